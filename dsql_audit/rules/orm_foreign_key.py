"""orm-foreign-key: foreign keys an ORM relation or a migration operation makes the framework emit."""

from dsql_audit.model import Hit

# the construct application sources report (sources/python.py, sources/frameworks/)
NODES = {"OrmForeignKey"}
CASCADING = {"CASCADE", "SET NULL", "SET_NULL", "SET DEFAULT", "SET_DEFAULT"}


def check(facts):
    c = facts.stmt or {}
    args = {"orm": c.get("orm") or "ORM", "target": c.get("target") or "its target",
            "on_delete": (c.get("on_delete") or "").upper().replace("_", " "), "claim": c.get("claim")}
    obj = c.get("object") or "a relation"
    yield Hit("orm-foreign-key", "declared", object=obj, args=args)
    if c.get("added_later"):
        yield Hit("orm-foreign-key", "added_later", object=obj, args=args)
    # a one-to-one (or unique) key reaches at most one child row: no fan-out to warn about
    if args["on_delete"] in CASCADING and not c.get("one_to_one"):
        yield Hit("orm-foreign-key", "cascade", object=obj, args={**args, "claim": None})
