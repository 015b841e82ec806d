"""dsql-audit: Aurora DSQL compatibility auditor for PostgreSQL estates."""

__version__ = "0.1.0"
