"""SQL strings in JavaScript/TypeScript, Java, Kotlin, Go, Ruby, C# and PHP (dsql_audit.sources.other_languages).

Each fixture under fixtures/apps/ holds DSQL-incompatible SQL on known lines, prose that must not be taken for SQL,
and a clean sibling with only SQL that DSQL runs. The tests check where each string's content starts, that its text
lines up with the file, which statements the rules then flag, and that odd files neither raise nor cost much.
"""

from __future__ import annotations

import re
from pathlib import Path

import pglast
import pytest

from dsql_audit.scan import scan_sql
from dsql_audit.sources.app import normalize_params, to_units
from dsql_audit.sources.other_languages import GRAMMAR, MAX_LINE, PARAMS, SUFFIXES, extract

APPS = Path(__file__).resolve().parents[1] / "fixtures" / "apps"

# per fixture: every statement the wiring makes of the extracted strings, as (line, column of its first keyword,
# the file's text there, the rule names the SQL rules report on it)
EXPECTED = {
    "node/src/repo.ts": [
        (13, 25, "BEGIN", set()),
        (15, 8, "SELECT id, qty", {"select-for-update"}),
        (21, 25, "DELETE FROM ${table}", set()),
        (22, 25, "COMMIT", set()),
        (31, 21, "TRUNCATE staging_orders", {"truncate"}),
        (34, 31, "CREATE INDEX orders_created_idx", {"sync-index"}),
    ],
    "node/src/legacy.js": [
        (5, 16, "SELECT o.id, o.total", {"select-for-update"}),
        (10, 21, "LOCK TABLE orders", {"lock-table"}),
    ],
    "java/src/main/java/com/example/orders/OrderRepository.java": [
        (14, 9, "SELECT id, status, total", {"select-for-update"}),
        (34, 60, "TRUNCATE TABLE order_archive", {"truncate"}),
        (41, 25, "CREATE INDEX orders_status_idx", {"sync-index"}),
        (48, 23, "UPDATE orders SET name = :name", set()),
    ],
    "kotlin/src/main/kotlin/com/example/inventory/InventoryDao.kt": [
        (10, 14, "SELECT pg_advisory_xact_lock", {"advisory-lock"}),
        (15, 22, "UPDATE $table SET", set()),
        (19, 23, "CREATE TEMPORARY TABLE inventory_scratch", {"temporary-table"}),
        (24, 23, "NOTIFY inventory_changed", {"listen-notify"}),
    ],
    "go/internal/store/accounts.go": [
        (19, 36, "LOCK TABLE accounts", {"lock-table"}),
        (23, 3, "SELECT balance", {"select-for-update"}),
        (36, 47, "TRUNCATE %s", {"truncate"}),
        (41, 33, "SELECT id, amount", set()),
    ],
    "ruby/app/models/inventory_lock.rb": [
        (11, 7, "SELECT pg_advisory_lock(#{key})", {"advisory-lock"}),
        (17, 17, "SELECT pg_advisory_unlock_all()", {"advisory-lock"}),
        (22, 17, "TRUNCATE inventory_log", {"truncate"}),
        (24, 7, "CREATE INDEX inventory_sku_idx", {"sync-index"}),
    ],
    "csharp/src/Billing/InvoiceEvents.cs": [
        (14, 52, 'LISTEN ""invoice_events""', {"listen-notify"}),
        (22, 33, "SELECT id FROM {table} WHERE id = @id FOR SHARE", {"select-for-update"}),
        (30, 17, "CREATE INDEX invoices_due_idx", {"sync-index"}),
    ],
    "php/src/RefundService.php": [
        (14, 30, "SAVEPOINT before_refund", {"savepoint"}),
        (15, 38, "UPDATE {$table} SET refunded", set()),
        (18, 13, "SELECT id, amount", {"select-for-update"}),
        (30, 27, "TRUNCATE refunds", {"truncate"}),
    ],
}
# the clean variants: (file, how many statements they hold)
CLEAN = {
    "node/src/clean.ts": 2,
    "java/src/main/java/com/example/orders/OrderQueries.java": 3,
    "kotlin/src/main/kotlin/com/example/inventory/InventoryQueries.kt": 2,
    "go/internal/store/clean.go": 2,
    "ruby/app/models/order_query.rb": 2,
    "csharp/src/Billing/InvoiceQueries.cs": 2,
    "php/src/RefundQueries.php": 2,
}
# prose in the fixtures that starts like SQL (some of it even parses) and must never be extracted
PROSE = re.compile(r"Select an? |update available|Update available|https://|Delete from cart|select-a-plan")


def _grammar(rel: str) -> str:
    return GRAMMAR[Path(rel).suffix]


def _extract(rel: str):
    text = (APPS / rel).read_text(encoding="utf-8")
    return text, text.split("\n"), extract(rel, text)


def _units(rel: str, emitted):
    errors: list = []
    units = list(to_units(rel, emitted, errors, "app"))
    assert errors == []
    return units


def _rules(sql: str) -> set:
    return {f.name for f in scan_sql(sql).findings}


# -- what is found, where ----------------------------------------------------------------------------------------


def test_suffixes_cover_every_language():
    assert SUFFIXES == {".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".java", ".kt", ".kts", ".go", ".rb", ".cs",
                        ".php"}
    assert set(GRAMMAR) == SUFFIXES


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_statements_their_positions_and_rules(rel):
    text, lines, emitted = _extract(rel)
    units = _units(rel, emitted)
    got = []
    for u in units:
        # the unit's position is its first keyword in the file
        assert lines[u.line - 1][u.column - 1:].startswith(u.text.lstrip()[:5]), (u.line, u.column, u.text)
        got.append((u.line, u.column, _rules(u.text)))
    want = [(line, column, rules) for line, column, _, rules in EXPECTED[rel]]
    assert got == want
    for line, column, at, _ in EXPECTED[rel]:
        assert lines[line - 1][column - 1:].startswith(at), (line, column, at)


@pytest.mark.parametrize("rel", sorted(CLEAN))
def test_clean_variants_have_no_errors(rel):
    text, lines, emitted = _extract(rel)
    units = _units(rel, emitted)
    assert len(units) == CLEAN[rel]
    for u in units:
        assert lines[u.line - 1][u.column - 1:].startswith(u.text.lstrip()[:5])
        errors = [f for f in scan_sql(u.text).findings if f.severity.name == "error"]
        assert errors == [], (u.line, u.text, errors)


ALL = sorted(EXPECTED) + sorted(CLEAN)


@pytest.mark.parametrize("rel", ALL)
def test_content_starts_right_after_the_opening(rel):
    """line/column is the first character after the quote; at column 1 the line before opened the string."""
    text, lines, emitted = _extract(rel)
    assert emitted
    for e in emitted:
        if e.column > 1:
            before = lines[e.line - 1][:e.column - 1]
            assert re.search(r"""(["'`]|[$@]")$""", before), (e.line, e.column, before)
        else:
            opener = lines[e.line - 2].rstrip()
            assert re.search(r'"""|<<[~-]?\'?SQL\'?|<<<\'?SQL\'?', opener), (e.line, opener)


def _mask(sql_line: str) -> set:
    """Columns of placeholders (their source is the run-time part, not these characters)."""
    return {i for m in re.finditer(r"_d(?:yn[a-z]*_*|y|_*)?", sql_line) for i in range(m.start(), m.end())}


@pytest.mark.parametrize("rel", ALL)
def test_every_character_lines_up_with_the_file(rel):
    """Each non-blank character of ``sql`` is the file's character at the same place (the wiring relies on it)."""
    text, lines, emitted = _extract(rel)
    checked = 0
    for e in emitted:
        for k, sql_line in enumerate(e.sql.split("\n")):
            file_line = lines[e.line - 1 + k]
            offset = e.column - 1 if k == 0 else 0
            if "\\" in file_line or '""' in file_line[offset:]:
                continue  # escapes (\" or a verbatim string's "") decoded: the rest of that line may shift
            masked = _mask(sql_line)
            for i, ch in enumerate(sql_line):
                if ch.isspace() or i in masked:
                    continue
                assert file_line[offset + i] == ch, (e.line + k, offset + i + 1, sql_line, file_line)
                checked += 1
    assert checked > 50


@pytest.mark.parametrize("rel", ALL)
def test_prose_is_not_sql(rel):
    text, lines, emitted = _extract(rel)
    assert PROSE.search(text), "the fixture should hold prose that looks like SQL"
    for e in emitted:
        assert not PROSE.search(e.sql), e.sql


@pytest.mark.parametrize("rel", ALL)
def test_every_extracted_statement_parses_with_the_languages_param_style(rel):
    text, lines, emitted = _extract(rel)
    for e in emitted:
        assert e.params == PARAMS[_grammar(rel)]
        assert e.literal and e.framework is None and e.txn is None
        pglast.parser.parse_sql_json(normalize_params(e.sql, e.params))


# -- run-time parts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rel,line,source", [
    ("node/src/repo.ts", 21, "${table}"),
    ("kotlin/src/main/kotlin/com/example/inventory/InventoryDao.kt", 15, "$table"),
    ("kotlin/src/main/kotlin/com/example/inventory/InventoryDao.kt", 24, "sku"),
    ("ruby/app/models/inventory_lock.rb", 11, "#{key}"),
    ("csharp/src/Billing/InvoiceEvents.cs", 22, "{table}"),
    ("php/src/RefundService.php", 15, "{$table}"),
    ("php/src/RefundService.php", 20, "$orderId"),
    ("go/internal/store/accounts.go", 36, "%s"),
])
def test_interpolations_become_same_length_placeholders(rel, line, source):
    text, lines, emitted = _extract(rel)
    (e,) = [e for e in emitted if e.line <= line < e.line + e.sql.count("\n") + 1]
    assert e.dynamic and "partly dynamic" in e.origin
    k = line - e.line
    sql_line, file_line = e.sql.split("\n")[k], lines[line - 1]
    offset = e.column - 1 if k == 0 else 0
    at = file_line.index(source, offset) - offset
    placeholder = sql_line[at:at + len(source)]
    assert re.fullmatch(r"_[a-z_]*", placeholder) and len(placeholder) == len(source), (sql_line, placeholder)
    assert sql_line[at + len(source):at + len(source) + 1] != "_"  # and no longer


def test_strings_without_run_time_parts_are_not_dynamic():
    for rel in ALL:
        text, lines, emitted = _extract(rel)
        for e in emitted:
            if not e.dynamic:
                assert "_dyn" not in e.sql and "partly dynamic" not in e.origin


def test_concatenation_keeps_each_parts_line_and_column():
    text, lines, emitted = _extract("node/src/legacy.js")
    e = emitted[0]
    assert (e.line, e.column) == (5, 16)
    sql_lines = e.sql.split("\n")
    assert len(sql_lines) == 4
    for k, part in enumerate(["FROM orders o", "WHERE o.customer_id = ?", "FOR SHARE"], start=1):
        col = sql_lines[k].index(part[:4])
        assert lines[e.line - 1 + k][col:].startswith(part)
    assert not e.dynamic


def test_mixed_concatenation_and_format_calls():
    src = ('class A { void f(long id, String t) {\n'
           '  conn.prepareStatement("SELECT * FROM orders WHERE id = " + id + " FOR SHARE");\n'
           '  conn.prepareStatement(String.format("TRUNCATE %s", t));\n} }\n')
    first, second = extract("A.java", src)
    assert first.dynamic and first.origin == "argument of conn.prepareStatement(), partly dynamic"
    assert "select-for-update" in _rules(normalize_params(first.sql, first.params))
    assert second.dynamic and second.origin == "argument of conn.prepareStatement(), partly dynamic"
    assert second.sql == "TRUNCATE _d"


# -- origins -------------------------------------------------------------------------------------------------------


def test_origin_names_the_call_the_string_is_passed_to():
    origins = {}
    for rel in EXPECTED:
        for e in _extract(rel)[2]:
            origins[(rel.split("/")[0], e.line)] = e.origin
    assert origins[("java", 34)] == "argument of conn.prepareStatement()"
    assert origins[("java", 14)] == "string in Java"
    assert origins[("node", 15)] == "argument of client.query()"  # `await client.query<Line>(…)`
    assert origins[("go", 19)] == "argument of tx.ExecContext()"
    assert origins[("go", 36)] == "argument of db.ExecContext(), partly dynamic"  # through fmt.Sprintf
    assert origins[("ruby", 11)] == "argument of @conn.exec_params(), partly dynamic"  # the heredoc's opening
    assert origins[("csharp", 14)] == "argument of NpgsqlCommand()"
    assert origins[("csharp", 22)] == "assigned to cmd.CommandText, partly dynamic"
    assert origins[("php", 14)] == "argument of pdo->prepare()"
    assert origins[("kotlin", 10)] == "argument of jdbc.queryForObject()"  # through .trimMargin()


# -- what is and is not SQL ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("literal", [
    "Select an option", "Show more", "Reset password", "DELETE", "select a file from the list",
    "Select file (optional)", "update available", "Close dialog", "Execute job", "Begin", "Select which file?",
    "Delete from cart?", "SELECT failed: retry", "https://example.com/select?update=1",
])
def test_prose_that_starts_like_sql_is_not_kept(literal):
    assert extract("a.js", f'const label = "{literal}";\n') == []


@pytest.mark.parametrize("src", [
    'db.query("BEGIN");',  # one word, but passed to a query call
    'const q = "select id from users where id = $1";',  # lower case, with SQL punctuation
    'const q = "select id from users where active order by id";',  # lower case, clause words
    'const q = "SELECT * FROM orders WHERE";',  # broken, but plainly SQL: the rules report the parse error
    'const q = `\n  INSERT INTO t (a)\n  VALUES (1`;',
])
def test_sql_is_kept(src):
    (e,) = extract("a.js", src + "\n")
    assert looks_like(e.sql)


def looks_like(sql: str) -> bool:
    return bool(re.match(r"\s*(BEGIN|select|SELECT|INSERT)\b", sql))


def test_broken_statement_reaches_the_rules_as_a_parse_error():
    (e,) = extract("q.go", 'package q\nconst q = "SELECT * FROM orders WHERE"\n')
    assert "parse-error" in _rules(normalize_params(e.sql, e.params))


# -- escapes and positions -----------------------------------------------------------------------------------------


def test_escapes_are_decoded_in_place_and_a_comment_they_end_is_blanked():
    src = 'const é = "ééé"; db.query("SELECT \\"id\\" FROM t -- note\\nFOR SHARE");\n'
    (e,) = extract("a.js", src)
    assert (e.line, e.column) == (1, 28)  # characters, not bytes: é is two bytes
    assert src.split("\n")[0][e.column - 1:].startswith("SELECT")
    raw = src[src.index('"SELECT') + 1:src.index('");')]
    assert len(e.sql) == len(raw)  # the line keeps its length: later lines keep their columns
    assert e.sql.startswith('SELECT "id" FROM t ')
    assert "note" not in e.sql and "FOR SHARE" in e.sql
    assert "select-for-update" in _rules(normalize_params(e.sql, e.params))


def test_raw_strings_keep_backslashes():
    src = "package q\nconst q = `SELECT E'\\\\n' AS nl FROM t WHERE a = $1`\n"
    (e,) = extract("q.go", src)
    assert e.sql == "SELECT E'\\\\n' AS nl FROM t WHERE a = $1"


def test_verbatim_and_raw_strings_in_csharp():
    src = ('var a = @"SELECT ""Id"" FROM ""Orders""\nWHERE ""Id"" = @id";\n'
           'var b = $"""\n    SELECT * FROM {t} WHERE id = @id FOR SHARE\n    """;\n')
    first, second = extract("a.cs", src)
    assert (first.line, first.column) == (1, 11)
    assert first.sql.startswith('SELECT "Id" FROM "Orders"') and first.sql.split("\n")[1].startswith('WHERE "Id"')
    assert (second.line, second.column) == (4, 1) and second.dynamic
    assert "select-for-update" in _rules(normalize_params(second.sql, second.params))


def test_two_heredocs_on_one_line():
    src = "conn.exec(<<~A, <<~B)\n  SELECT 1 FROM a\nA\n  DELETE FROM b WHERE id = 1\nB\n"
    first, second = extract("two.rb", src)
    assert (first.line, first.column, second.line, second.column) == (2, 1, 4, 1)
    assert first.sql.strip() == "SELECT 1 FROM a" and second.sql.strip() == "DELETE FROM b WHERE id = 1"


# -- files that are odd --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,text", [
    ("bin.go", "\x00\x01\x02 package \udcff SELECT \"\x00SELECT 1\x00\" `INSERT INTO t VALUES (1)` \ufffd"),
    ("broken.java", 'class { void f( { conn.prepareStatement("TRUNCATE orders"); \n String x = "SELECT 1 ;;; }}}} ((('),
    ("broken.ts", 'const q = `SELECT * FROM t WHERE id = ${'),
    ("broken.rb", "conn.exec(<<~SQL\n  SELECT 1\n"),
    ("broken.php", "<?php $x = <<<SQL\n SELECT * FROM t\n"),
    ("x.kt", '"""' * 1000),
    ("deep.js", "x = " + "(" * 5000 + '"SELECT 1"' + ")" * 5000),
    ("empty.cs", ""),
])
def test_odd_files_do_not_raise(name, text):
    result = extract(name, text)
    assert isinstance(result, list)


def test_a_syntax_error_elsewhere_does_not_hide_sql():
    (e,) = extract("broken.java", 'class { void f( { conn.prepareStatement("TRUNCATE orders"); }}}} (((\n')
    assert e.sql == "TRUNCATE orders" and e.origin == "argument of conn.prepareStatement()"


def test_minified_and_huge_files_are_skipped():
    sql = 'db.query("TRUNCATE orders");\n'
    assert extract("a.js", sql)
    assert extract("a.js", sql + "x" * (MAX_LINE * 2) + "\n") == []
    assert extract("a.js", sql + ("// " + "y" * 70 + "\n") * 30_000) == []  # over 2 MB
    assert extract("a.unknown", sql) == []


def test_long_concatenation_is_one_statement():
    src = 'const q = "SELECT 1 " +\n' + '  "UNION SELECT 1 " +\n' * 3000 + '  "";\n'
    (e,) = extract("long.js", src)
    assert (e.line, e.column) == (1, 12) and e.sql.count("\n") == 3001


def test_concatenation_across_blank_and_comment_lines():
    src = ('<?php\n$sql = "SELECT id, amount " .\n\n    // the filter\n    "FROM refunds " .\n'
           '    "WHERE id = ? FOR SHARE";\n')
    (e,) = extract("a.php", src)
    lines = src.split("\n")
    sql_lines = e.sql.split("\n")
    assert (e.line, e.column) == (2, 9) and len(sql_lines) == 5
    assert sql_lines[1].strip() == sql_lines[2].strip() == ""  # the blank line and the comment are gaps
    assert lines[4][sql_lines[3].index("FROM"):].startswith("FROM refunds")
    assert lines[5][sql_lines[4].index("WHERE"):].startswith("WHERE id = ?")


@pytest.mark.parametrize("lang", ["node", "java", "kotlin", "go", "ruby", "csharp", "php"])
def test_a_scan_of_the_app_reports_the_bad_files_only(lang):
    """Through the whole pipeline (discovery → extraction → units → SQL rules): findings land on the files
    with DSQL-incompatible SQL, at lines holding the offending token, and the clean variants stay clean."""
    from pathlib import Path as _Path

    from dsql_audit.scan import scan

    root = _Path(__file__).resolve().parents[1] / "fixtures" / "apps" / lang
    result = scan([str(root)])
    assert not result.errors, result.errors
    assert len(result.findings) >= 2
    for f in result.findings:
        assert "clean" not in _Path(f.path).name.lower(), (f.path, f.line, f.message)
        line = _Path(f.path).read_text().splitlines()[f.line - 1]
        assert line.strip(), (f.path, f.line)


def test_a_session_statement_needs_a_database_call(tmp_path):
    """Log text and vendored code read like SET/SHOW/BEGIN: only a database call's argument is such a statement
    (issue 18: `log("SET …")` in minified JavaScript was a session-setting finding)."""
    from dsql_audit.scan import scan

    (tmp_path / "vendor.js").write_text('function init(db) {\n  log("SET the value of x = 1");\n'
                                        '  console.debug("SET statement_timeout = 0");\n'
                                        '  db.query("SET statement_timeout = 0");\n}\n')
    assert [(f.line, f.name) for f in scan([str(tmp_path)]).findings] == [(4, "session-setting")]
