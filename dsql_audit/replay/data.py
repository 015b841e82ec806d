"""`replay --data`: seed the engine's tables so a replay modifies real rows (row counts, sizes and
conflicts then match production's shape).

Reads pg_dump output (COPY … FROM stdin blocks or INSERT statements; what a data-only dump holds), one CSV
file per table (``accounts.csv`` or ``billing.accounts.csv``, a header row naming the columns), or a
directory of either. Seeding is setup, not workload: it goes through a plain connection to the engine's
PostgreSQL, so DSQL's transaction bounds do not apply to it; one transaction per COPY block or file,
streamed, never held in memory. Schema statements in a data file are skipped (the schema comes from
--schema, where DSQL's rules apply to it).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from dsql_audit.model import InputError
from dsql_audit.replay.captures import open_text
from dsql_audit.sqltext import Splitter, lead

_NAME = r"((?:\"(?:[^\"]|\"\")+\"|[\w$]+)(?:\.(?:\"(?:[^\"]|\"\")+\"|[\w$]+))?)"  # [schema.]table, quoted or not
_COPY_TABLE = re.compile(r"^\s*COPY\s+" + _NAME, re.I)
_INSERT_TABLE = re.compile(r"\s*INSERT\s+INTO\s+" + _NAME, re.I)
# statements a data dump holds besides COPY: rows, settings, sequence positions, transaction control
_DATA_STATEMENT = re.compile(r"^\s*(INSERT|SET|SELECT|UPDATE|DELETE|BEGIN|COMMIT|START|END)\b", re.I)
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2")


def _unquote(name: str) -> str:
    return ".".join(p[1:-1].replace('""', '"') if p.startswith('"') else p.lower()
                    for p in re.findall(r'"(?:[^"]|"")+"|[^.]+', name))


def _table_key(name: str) -> str:
    name = _unquote(name)
    return name if "." in name else f"public.{name}"


class Seeder:
    def __init__(self, engine, log):
        import psycopg

        self.conn = psycopg.connect(engine.uri, autocommit=False)
        self.log = log
        self.rows: dict = {}  # schema.table → rows loaded
        self.errors: list[InputError] = []

    def close(self) -> None:
        self.conn.close()

    def seed(self, path: str) -> None:
        p = Path(path)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(
                (*_CSV_SUFFIXES, ".sql", ".sql.gz", ".sql.bz2", ".dump")))
            if not files:
                self.errors.append(InputError(path, "no .csv or .sql data files in this directory"))
            for f in files:
                self.seed(str(f))
        elif p.name.lower().endswith(_CSV_SUFFIXES):
            self._csv(p)
        else:
            self._dump(p)

    # -- CSV: one table per file --------------------------------------------------------------
    def _csv(self, path: Path) -> None:
        import psycopg
        from psycopg import sql

        stem = path.name
        for suffix in _CSV_SUFFIXES:
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
        parts = stem.split(".")
        table = sql.Identifier(*parts[-2:]) if len(parts) >= 2 else sql.Identifier(stem)
        key = ".".join(parts[-2:]) if len(parts) >= 2 else f"public.{stem}"
        with open_text(path) as fh:
            header = fh.readline()
            columns = next(csv.reader(io.StringIO(header)), [])
            if not columns:
                self.errors.append(InputError(str(path), "empty CSV file (a header row naming the columns "
                                                         "comes first)", line=1))
                return
            stmt = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
                table, sql.SQL(", ").join(sql.Identifier(c.strip()) for c in columns))
            try:
                with self.conn.cursor() as cur:
                    with cur.copy(stmt) as copy:
                        while chunk := fh.read(1 << 20):
                            copy.write(chunk)
                    loaded = cur.rowcount
                self.conn.commit()
            except psycopg.Error as exc:
                self.conn.rollback()
                if _copy_line(exc, None) is None:  # the table or a column, not a row: nothing of it loads
                    self.errors.append(InputError(str(path), f"cannot load into {key}: {_first_line(exc)}",
                                                  line=1))
                    return
                rows_stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    table, sql.SQL(", ").join(sql.Identifier(c.strip()) for c in columns))
                loaded = self._csv_rows(path, key, rows_stmt)  # keep every good row; name each bad one
        self.rows[key] = self.rows.get(key, 0) + max(loaded, 0)
        self.log(f"data {path}: {loaded:,} rows into {key}")

    def _csv_rows(self, path: Path, key: str, stmt, batch: int = 1000) -> int:
        """A CSV whose COPY failed on a row, loaded again (``stmt``: a text-format COPY the rows are written
        to one by one) in batches; a failing batch row by row, each bad
        row an input error at its file line (the first 20), the good ones loaded."""
        import psycopg

        loaded, bad = 0, 0
        with open_text(path) as fh:
            reader = csv.reader(fh)
            next(reader, None)  # the header
            rows: list = []
            start = reader.line_num + 1

            def load(chunk) -> bool:
                try:
                    with self.conn.cursor() as cur, cur.copy(stmt) as copy:
                        for _, row in chunk:
                            copy.write_row([None if v == "" else v for v in row])  # CSV: empty is NULL
                    self.conn.commit()
                    return True
                except psycopg.Error as exc:
                    self.conn.rollback()
                    if len(chunk) == 1:
                        nonlocal bad
                        bad += 1
                        if bad <= 20:
                            self.errors.append(InputError(str(path), f"row left out of {key}: {_first_line(exc)}",
                                                          line=chunk[0][0]))
                    return False

            def flush() -> None:
                nonlocal loaded
                if rows and load(rows):
                    loaded += len(rows)
                elif rows:
                    loaded += sum(load([r]) for r in rows)
                rows.clear()

            for row in reader:
                rows.append((start, row))
                start = reader.line_num + 1
                if len(rows) >= batch:
                    flush()
            flush()
        if bad > 20:
            self.errors.append(InputError(str(path), f"{bad - 20:,} more rows left out of {key}"))
        return loaded

    # -- pg_dump output -------------------------------------------------------------------------
    def _dump(self, path: Path) -> None:
        import psycopg

        state = {"stmt": None, "copy": None, "cm": None, "failed": False}

        def sink(stmt, line):
            if state["stmt"] is not stmt:
                state.update(stmt=stmt, failed=False)
                try:
                    cm = self.conn.cursor().copy(stmt.text)
                    state["copy"], state["cm"] = cm.__enter__(), cm
                except psycopg.Error as exc:
                    self._fail(path, stmt, exc)
                    state["failed"], state["cm"] = True, None
            if not state["failed"]:
                try:
                    state["copy"].write(line)
                except psycopg.Error as exc:
                    self._fail(path, stmt, exc)
                    state["failed"] = True

        splitter = Splitter(copy_sink=sink)
        skipped = 0
        with open_text(path) as fh:
            for st in splitter.split(fh):
                if st.kind != "sql":
                    continue
                m = _COPY_TABLE.match(lead(st.text))
                if m and st.copy_rows is not None and re.search(r"\bFROM\s+STDIN\b", st.text, re.I):
                    if state["stmt"] is st and state["cm"] is not None and not state["failed"]:
                        try:
                            state["cm"].__exit__(None, None, None)
                            self.conn.commit()
                            key = _table_key(m.group(1))
                            self.rows[key] = self.rows.get(key, 0) + st.copy_rows
                        except psycopg.Error as exc:
                            self._fail(path, st, exc)
                    state.update(stmt=None, copy=None, cm=None, failed=False)
                    continue
                if not _DATA_STATEMENT.match(lead(st.text)):
                    skipped += 1
                    continue
                try:
                    with self.conn.cursor() as cur:
                        cur.execute(st.text, prepare=False)
                        count = cur.rowcount
                    self.conn.commit()
                except psycopg.Error as exc:
                    self._fail(path, st, exc)
                    continue
                ins = _INSERT_TABLE.match(lead(st.text))
                if ins and count > 0:
                    key = _table_key(ins.group(1))
                    self.rows[key] = self.rows.get(key, 0) + count
        if skipped:
            self.log(f"data {path}: {skipped} schema statements skipped (the schema comes from --schema)")
        self.log(f"data {path}: {sum(self.rows.values()):,} rows loaded so far")

    def _fail(self, path, stmt, exc) -> None:
        self.conn.rollback()
        line = _copy_line(exc, None)
        where = stmt.line + line if line is not None else stmt.line
        self.errors.append(InputError(str(path), f"cannot load: {_first_line(exc)}", line=where))


def _first_line(exc) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _copy_line(exc, default):
    """The data line PostgreSQL names in a failed COPY's CONTEXT ("COPY t, line 3: …"), if any."""
    m = re.search(r"COPY [^,]+, line (\d+)", getattr(getattr(exc, "diag", None), "context", None) or "")
    return int(m.group(1)) if m else default


def seed(engine, paths: list[str], log) -> tuple[dict, list[InputError]]:
    """Load every data file; (table → rows loaded, errors naming file and line)."""
    s = Seeder(engine, log)
    try:
        for path in paths:
            s.seed(path)
    finally:
        s.close()
    return s.rows, s.errors
