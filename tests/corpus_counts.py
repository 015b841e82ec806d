"""Count what a scan finds in a schema, in the terms of ../shared/corpus/schemas/ground_truth.json."""

from __future__ import annotations

from dsql_audit.config import Config
from dsql_audit.scan import scan

FK_VARIANTS = ("inline", "add_constraint", "add_not_valid")


def _objects(findings, slug, messages=None):
    return {f.object for f in findings if f.name == slug and (messages is None or any(m in f.message for m in messages))}


def scan_counts(path) -> dict:
    result = scan([str(path)], config=Config(profile="2026-06-30"), jobs=1, aggregate=False)
    fs = result.findings
    fk = {f.object for f in fs if f.name == "foreign-key" and "DSQL refused foreign keys" in f.message
          or f.name == "foreign-key" and "without NOT VALID" in f.message}
    return {
        "foreign_keys": len(fk),
        "triggers": len(_objects(fs, "trigger", ["CREATE TRIGGER"])),
        # routines the input creates and later drops are findings, but not in the final catalog
        "non_sql_functions": len({o for o in _objects(fs, "procedural-function")
                                  if tuple(o.split(".", 1)) in result.schema.routines}),
        "procedures": len(_objects(fs, "procedure", ["CREATE PROCEDURE"])),
        "extensions": len(_objects(fs, "extension", ["cannot be installed"])),
        "custom_types": len(_objects(fs, "custom-type", ["Enum type", "Composite type", "Range type"])),
        "materialized_views": len(_objects(fs, "materialized-view", ["Materialized view"])),
        "partitioned_tables": len(_objects(fs, "partitioned-table", ["PARTITION BY"])),
        "exclusion_constraints": len(_objects(fs, "exclusion-constraint")),
        "too_many_columns": len(_objects(fs, "too-many-columns")),
        "too_many_indexes": len(_objects(fs, "too-many-indexes")),
        "primary_key_too_wide": len({f.object for f in fs if f.name == "primary-key-too-wide" and "columns" in f.message}),
        "too_many_schemas": len(_objects(fs, "too-many-schemas")),
        "too_many_tables": len(_objects(fs, "too-many-tables")),
        "missing_primary_key": len(_objects(fs, "missing-primary-key")),
    }


def truth_counts(gt: dict) -> dict:
    c = gt["catalog"]
    langs = c["functions_by_language"]
    kinds = c["user_types_by_kind"]
    return {
        "foreign_keys": c["foreign_keys"],
        "triggers": c["triggers"],
        # functions_by_language counts functions and procedures; procedures are their own finding
        "non_sql_functions": langs["plpgsql"] + langs["c"] + langs["other"] - c.get("procedures_non_sql", 0),
        "procedures": c["procedures"],
        "extensions": len(set(gt["file_text"]["create_extension_statements"])),
        "custom_types": kinds["enum"] + kinds["composite"] + kinds["range"],
        "materialized_views": c["materialized_views"],
        "partitioned_tables": c["partitioned_tables"],
        "exclusion_constraints": c["exclusion_constraints"],
        "too_many_columns": c["tables_over_255_columns"],
        "too_many_indexes": c["tables_over_24_indexes"],
        "primary_key_too_wide": c["primary_keys_over_8_columns"],
        # DSQL's quota is 10 schemas besides public (and sys); schemas_count includes public
        "too_many_schemas": 1 if c["schemas_count"] - 1 > 10 else 0,
        "too_many_tables": 1 if c["tables_excluding_partitions"] > 1000 else 0,
        "missing_primary_key": c["tables_without_primary_key"],
    }
