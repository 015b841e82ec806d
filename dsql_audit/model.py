"""The plain data that flows through dsql-audit: units, hits, findings."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

try:  # the built-in BLAKE2 module imports in microseconds; hashlib loads OpenSSL (~10 ms at start-up)
    from _blake2 import blake2b as _digest
except ImportError:  # pragma: no cover
    from hashlib import blake2b as _digest


class Severity(enum.IntEnum):
    info = 1
    warning = 2
    error = 3

    @classmethod
    def parse(cls, text: str) -> "Severity":
        try:
            return cls[text.strip().lower()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (use error, warning or info)") from None

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.name


@dataclass(slots=True)
class Unit:
    """One SQL statement as a source found it.

    ``text`` is the statement exactly as written (DSQL-only keywords included);
    ``line``/``column`` (1-based) locate its first character in ``path``.
    ``txn`` names the transaction the statement runs in under the source's
    transaction model; ``txn_implicit`` says whether that grouping comes from
    the framework (True) rather than BEGIN/COMMIT written in the text.
    """

    path: str
    text: str
    line: int
    column: int = 1
    source: str = "sql"
    txn: int | None = None
    framework: str | None = None
    meta: str | None = None  # psql meta-command (\connect …) instead of SQL
    copy_rows: int = 0  # data lines of a COPY … FROM stdin block that followed
    index: int = 0  # position of the unit within its input
    down: bool = False  # a down migration's statement (a deploy does not run it)
    # application source: an ORM or driver construct (not SQL) the app rules judge, {"kind": …}
    construct: dict | None = None
    origin: str | None = None  # what in the code sends this (shown with each finding)
    snippet: str | None = None  # the source line, when ``text`` is not the file's own text (synthesized SQL)
    dynamic: bool = False  # parts computed at run time were replaced by placeholders
    # synthesized SQL: where its parts come from, ((offset in text, line, column, source line, exact), …)
    # ascending; exact: the text is laid out on the source's own columns from there
    spans: tuple | None = None
    # what runs before this file's own statements in their transaction (an earlier migration, a framework's
    # bookkeeping write): it decides transaction findings and is never reported itself; construct holds
    # {"kind": "TxnContext", "classes": ["ddl", "dml"]}
    context: bool = False
    restates: bool = False  # a model declaration whose DDL a migration or create_all() sends (see Finding.restates)
    superseded: bool = False  # in a migration a squashed one replaces: a fresh database never runs it
    # dynamic text: placeholder → the run-time source it stands for (``_d1___`` → ``${tablePrefix}``), so
    # a finding's message names what the code wrote
    placeholders: dict | None = None


@dataclass(slots=True)
class Hit:
    """A rule's verdict on one construct, before profile/config/suppression.

    ``offset`` is a character offset into the unit's text (None: whole statement).
    """

    slug: str
    variant: str = "default"
    offset: int | None = None
    end_offset: int | None = None
    object: str | None = None  # with rel: the part after the relation (a column, a constraint)
    detail: str | None = None  # fills {detail} in messages
    rel: tuple | None = None  # (schema or None, name): qualified through search_path in input order
    args: dict = field(default_factory=dict)


@dataclass(slots=True)
class Finding:
    rule: str
    name: str
    severity: Severity
    category: str
    message: str
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    source: str
    object: str | None = None
    snippet: str = ""
    fix: str = ""
    docs: str = ""
    sqlstate: str | None = None
    dsql_message: str | None = None
    framework: str | None = None
    occurrences: int = 1
    fingerprint: str = ""
    queryid: str | None = None  # replay of pg_stat_statements: the statement's queryid
    transaction: str | None = None  # replay: session/transaction number where it happened
    # file column of the snippet's first character: 1, unless a long line is shown as a window around the
    # construct ("…" marks each cut end); the caret goes under snippet[column - snippet_column]
    snippet_column: int = 1
    observed: int = 0  # `run`: times the engine saw this violation happen (0: not observed, or not run)
    # other places saying the same thing: a model declaration the migration (or create_all) that sends it
    # restates, [{"path", "line"}]
    related: list = field(default_factory=list)
    claim: str | None = None  # the schema object the finding is about ("fk:t.c", "index:t(a,b)"): joins restatements
    restates: bool = False  # a model-level declaration of what a migration or create_all() sends
    superseded: bool = False  # found in a superseded migration: counted, not reported

    def related_places(self) -> dict:
        """{label: ["path:line" | "database: object", …]}: the model declarations a migration restates
        ("declared at") and the same object found in a live database read merged in ("in the database")."""
        out: dict = {}
        for r in self.related:
            label = "in the database" if r.get("kind") == "database" else "declared at"
            place = f"{r['path']}: {r['object']}" if int(r.get("line") or 0) <= 0 and r.get("object") else \
                f"{r['path']}:{r['line']}"
            out.setdefault(label, []).append(place)
        return out

    @property
    def by_object(self) -> bool:
        """Located by a database object (a live catalog read), not by a line of a file."""
        return self.line <= 0 and bool(self.object)

    def where(self, column: bool = True) -> str:
        """The place to show: ``path:line:col`` (``path:line`` without ``column``), or for a finding located
        by object ``database: schema.table.column`` — never a ``0:0``."""
        if self.by_object:
            return f"{self.path}: {self.object}"
        if self.line <= 0:
            return self.path
        return f"{self.path}:{self.line}:{self.column}" if column else f"{self.path}:{self.line}"

    def compute_fingerprint(self) -> str:
        """Stable across runs and line shifts: rule, file, object and the
        normalised offending line (not its number)."""
        snippet = self.snippet
        if self.snippet_column != 1 and snippet[:1] == "\u2026":
            snippet = snippet[1:]  # a window of a long line: the "…" is not the statement's
        basis = "\x1f".join(
            [self.name, self.path, self.object or "", " ".join(snippet.split()).lower()]
        )
        # surrogatepass: a path with undecodable bytes still fingerprints (valid text hashes as before)
        self.fingerprint = _digest(basis.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()
        return self.fingerprint

    @classmethod
    def from_json(cls, d: dict) -> "Finding":
        """The inverse of to_json (a saved report read back by `dsql-audit report`)."""
        dsql = d.get("dsql_error") or {}
        f = cls(rule=d["rule"], name=d["name"], severity=Severity.parse(d["severity"]), category=d["category"],
                message=d["message"], path=d["path"], line=int(d["line"]), column=int(d.get("column", 1)),
                end_line=int(d.get("end_line", d["line"])), end_column=int(d.get("end_column", 1)),
                source=d.get("source", "sql"), object=d.get("object"), snippet=d.get("snippet") or "",
                fix=d.get("fix") or "", docs=d.get("docs") or "", sqlstate=dsql.get("sqlstate"),
                dsql_message=dsql.get("message"), framework=d.get("framework"),
                occurrences=int(d.get("calls", d.get("occurrences", 1))), fingerprint=d.get("fingerprint", ""),
                queryid=d.get("queryid"), transaction=d.get("transaction"),
                snippet_column=int(d.get("snippet_column", 1)), observed=int(d.get("observed", 0)),
                related=list(d.get("related") or []))
        if not f.fingerprint:
            f.compute_fingerprint()
        return f

    def to_json(self) -> dict:
        out = {
            "rule": self.rule,
            "name": self.name,
            "severity": self.severity.name,
            "category": self.category,
            "message": self.message,
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "source": self.source,
            "object": self.object,
            "snippet": self.snippet,
            "fix": self.fix,
            "docs": self.docs,
            "fingerprint": self.fingerprint,
        }
        if self.sqlstate:
            out["dsql_error"] = {"sqlstate": self.sqlstate, "message": self.dsql_message}
        if self.framework:
            out["framework"] = self.framework
        if self.occurrences > 1:
            out["occurrences"] = self.occurrences
        if self.queryid is not None:
            out["queryid"] = self.queryid
            out["calls"] = self.occurrences
        if self.transaction is not None:
            out["transaction"] = self.transaction
        if self.snippet_column != 1:
            out["snippet_column"] = self.snippet_column
        if self.observed:
            out["observed"] = self.observed
        if self.related:
            out["related"] = list(self.related)
        return out


@dataclass(slots=True)
class InputError:
    path: str
    message: str
    line: int | None = None
    skipped: bool = False  # nothing of the file was read (binary, too big, unreadable): not in the JSON

    def __post_init__(self):
        try:
            self.path.encode("utf-8")
        except UnicodeEncodeError:  # a file name that is not UTF-8 (surrogate escapes): shown as \xNN
            from dsql_audit.output import printable

            self.path = printable(self.path)
        except AttributeError:
            pass

    def to_json(self) -> dict:
        out = {"path": self.path, "message": self.message}
        if self.line is not None:
            out["line"] = self.line
        return out
