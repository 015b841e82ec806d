"""Routine facts shared by the schema model and the routine rules: signature and language."""

from dsql_audit.facts import names, option_value


def routine_rel(stmt: dict) -> tuple:
    """(schema or None, "name(argtypes)") for Hit.rel."""
    parts = names(stmt.get("funcname"))
    sig = routine_signature(stmt)
    return (parts[0] if len(parts) > 1 else None, sig[len(parts[0]) + 1:] if len(parts) > 1 else sig)


def routine_signature(stmt: dict) -> str:
    args = []
    for p in stmt.get("parameters", ()):
        fp = p.get("FunctionParameter", {})
        if fp.get("mode") in ("FUNC_PARAM_OUT", "FUNC_PARAM_TABLE"):
            continue
        tn = fp.get("argType") or {}
        parts = names(tn.get("names"))
        args.append((parts[-1] if parts else "?") + ("[]" if tn.get("arrayBounds") else ""))
    return f"{'.'.join(names(stmt.get('funcname')))}({', '.join(args)})"


def language(stmt: dict) -> str:
    lang = option_value(stmt.get("options"), "language")
    if lang is None:  # SQL-standard bodies (BEGIN ATOMIC / RETURN) are SQL
        return "sql"
    return str(lang).lower()
