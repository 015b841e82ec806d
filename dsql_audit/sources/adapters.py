"""The AWS Aurora DSQL adapters and what each rewrites at run time (DSQL-FACTS.md §6, the ORMS snapshot of
2026-08-17): a project that uses one gets exactly these findings downgraded to info, with the reason."""

ADAPTERS = {
    "aurora-dsql-django": {
        "frameworks": {"django"},
        "handles": {
            "orm-foreign-key": "supports_foreign_keys=False: foreign-key DDL is skipped",
            "foreign-key": "supports_foreign_keys=False: foreign-key DDL is skipped",
            "sync-index": "index SQL becomes CREATE INDEX ASYNC",
            "index-definition": "operator classes and _like indexes are dropped",
            "sequence": "AutoField/BigAutoField become uuid (or identity with CACHE 65536)",
            "multiple-ddl": "can_rollback_ddl=False: a migration is not wrapped in one transaction",
            "ddl-dml-mix": "can_rollback_ddl=False: a migration is not wrapped in one transaction",
            "savepoint": "uses_savepoints=False",
        },
    },
    "aurora-dsql-sqlalchemy": {
        "frameworks": {"sqlalchemy", "alembic"},
        "handles": {
            "orm-foreign-key": "foreign-key constraints are left out of CREATE TABLE and never ALTERed in",
            "foreign-key": "foreign-key constraints are left out of CREATE TABLE and never ALTERed in",
            "sync-index": "CREATE [UNIQUE] INDEX ASYNC",
            "sequence": "Sequence gets BIGINT and CACHE 65536; autoincrement keys become identity with a cache",
            "custom-type": "supports_native_enum=False: Enum becomes VARCHAR",
            "multiple-ddl": "supports_ddl_transactions=False: a commit after each DDL",
            "ddl-dml-mix": "supports_ddl_transactions=False: a commit after each DDL",
        },
    },
    "aurora-dsql-tortoise": {
        "frameworks": {"tortoise"},
        "handles": {
            "orm-foreign-key": "foreign-key SQL is emptied",
            "sync-index": "CREATE [UNIQUE] INDEX ASYNC",
            "sequence": "BigInt generated keys become identity with CACHE 65536",
            "multiple-ddl": "DDL is split into one statement per transaction",
        },
    },
    "aurora-dsql-prisma-tools": {
        "frameworks": {"prisma"},
        "handles": {
            "sync-index": "transform rewrites migration SQL (dsql-lint --fix)",
        },
    },
}


def downgrade(findings: list, used: set) -> None:
    """Findings an adapter in ``used`` handles become info, saying which adapter and how."""
    from dsql_audit.model import Severity

    for name in used:
        adapter = ADAPTERS.get(name)
        if adapter is None:
            continue
        for f in findings:
            how = adapter["handles"].get(f.name)
            if how and f.framework in adapter["frameworks"] and f.severity > Severity.info:
                f.severity = Severity.info
                f.message += f" (handled at run time by {name}: {how})"
