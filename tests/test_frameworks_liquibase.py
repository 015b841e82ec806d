"""dsql_audit.sources.frameworks.liquibase on real parsers (expat behind defusedxml, PyYAML): SQL bodies at their
file lines and columns whatever the parser decoded in them (CDATA, ``&lt;``, YAML escapes and block scalars, JSON
strings), hostile DTDs refused, ``dbms`` filters, and what the old hand-written reading got wrong."""

from __future__ import annotations

import time

import pytest

from dsql_audit.sources.frameworks import liquibase

XML_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<databaseChangeLog xmlns="http://www.liquibase.org/xml/ns/dbchangelog">\n')


def _xml(body: str) -> str:
    return XML_HEAD + body + "</databaseChangeLog>\n"


def _changeset(changes: str, attrs: str = "") -> str:
    return f'  <changeSet id="1" author="a"{attrs}>\n{changes}  </changeSet>\n'


def _yaml(change: str) -> str:
    """A YAML changelog whose one change is ``change`` (written at the indentation of a change's keys)."""
    return ("databaseChangeLog:\n  - changeSet:\n      id: 1\n      author: a\n      changes:\n"
            f"        - sql:\n{change}")


def _recs(path: str, text: str):
    assert liquibase.detect(path, text)
    return liquibase.extract(path, text)


def _literals(recs):
    return [e for e in recs if e.literal]


def _where(e, needle: str) -> tuple[int, int]:
    """Where the record's SQL text puts ``needle``: its lines and columns map into the file from (line, column)."""
    at = e.sql.index(needle)
    before = e.sql[:at]
    lines = before.count("\n")
    col = at - (before.rfind("\n") + 1)
    return e.line + lines, (e.column + col if lines == 0 else col + 1)


def _in_file(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the nth occurrence of ``needle`` in the file."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    return text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1


# ---------------------------------------------------------------------------------------------------------------
# XML: SQL bodies at their file positions
# ---------------------------------------------------------------------------------------------------------------

def test_sql_in_cdata_keeps_its_lines_and_columns_with_crlf_line_ends():
    text = _xml(_changeset("    <sql><![CDATA[\r\n  SELECT a<b FROM t;\r\n     DROP TABLE x;\r\n]]></sql>\n"))
    [e] = _literals(_recs("changelog.xml", text))
    assert (e.line, e.column) == _in_file(text, "<![CDATA[")  # the content starts right after <sql>
    assert "a<b" in e.sql and "CDATA" not in e.sql and "]]>" not in e.sql
    assert _where(e, "SELECT") == _in_file(text, "SELECT")
    assert _where(e, "DROP") == _in_file(text, "DROP")


def test_entities_are_decoded_without_splitting_operators_and_columns_after_them_stay_right():
    """The old reading padded each decoded character on its left: ``&lt;&gt;`` came out ``<   >`` and
    ``-&gt;&gt;`` as ``-   >   >``, operators split apart. The spaces a reference saves now go at the next
    whitespace, so operators stay whole and every token after that whitespace is at its file column."""
    sql = "SELECT id FROM t WHERE a &lt;&gt; b AND doc-&gt;&gt;'k' = 'x &amp; y' AND n &lt;= 3;"
    text = _xml(_changeset(f"    <sql>{sql}</sql>\n"))
    [e] = _literals(_recs("changelog.xml", text))
    assert "a <>" in e.sql and "doc->>'k'" in e.sql and "'x &" in e.sql and "<=" in e.sql
    assert "&lt;" not in e.sql and "&gt;" not in e.sql and "&amp;" not in e.sql
    for word in ("AND doc", "= 'x", "AND n", "3;"):
        assert _where(e, word) == _in_file(text, word)
    assert len(e.sql) == len(sql)


def test_character_references_and_non_ascii_before_the_sql():
    text = _xml(_changeset("    <sql>SELECT 'é€𝄞' &#x41; &#65;; DROP TABLE x;</sql>\n",
                           attrs=' logicalFilePath="ünïcode"'))
    [e] = _literals(_recs("changelog.xml", text))
    assert "SELECT 'é€𝄞' A" in e.sql
    assert _where(e, "DROP") == _in_file(text, "DROP")


def test_a_line_break_reference_is_a_space_unless_a_comment_might_end_there():
    plain = _xml(_changeset("    <sql>SELECT 1;&#10;DROP TABLE q;</sql>\n"))
    [e] = _literals(_recs("changelog.xml", plain))
    assert "\n" not in e.sql and _where(e, "DROP") == _in_file(plain, "DROP")  # the old reading: one line off
    commented = _xml(_changeset("    <sql>SELECT 2; -- c&#10;DROP TABLE q;</sql>\n"))
    [e] = _literals(_recs("changelog.xml", commented))
    # the comment ends at the line break: DROP stays SQL (its line is then one off, as the file has no break)
    assert "\nDROP TABLE q;" in e.sql


def test_xml_comments_and_comment_elements_inside_sql_are_not_sql():
    text = _xml(_changeset("    <sql><comment>drop it DROP TABLE z</comment>\n"
                           "      <!-- DROP TABLE y -->CREATE SEQUENCE s;</sql>\n"))
    [e] = _literals(_recs("changelog.xml", text))
    assert "DROP" not in e.sql and _where(e, "CREATE") == _in_file(text, "CREATE")


def test_procedure_text_child_and_empty_bodies():
    text = _xml(_changeset("    <sql/>\n    <sql>   \n   </sql>\n"
                           "    <createProcedure>\n      <procedureText>CREATE FUNCTION f() RETURNS int AS $$ "
                           "SELECT 1 $$ LANGUAGE sql;</procedureText>\n    </createProcedure>\n"))
    [e] = _literals(_recs("changelog.xml", text))
    assert e.origin == "Liquibase createProcedure" and _where(e, "CREATE FUNCTION") == _in_file(text, "CREATE F")


def test_attribute_positions_come_from_the_tag_itself_not_from_text_inside_other_values():
    """The old reading searched the tag for ``type="`` and found it inside the remarks value; the identity
    clause goes at the ``autoIncrement`` attribute, not at that word inside another value."""
    text = _xml(_changeset(
        '    <createTable tableName="t">\n'
        '      <column name="id" remarks=\'type="x" autoIncrement="no" a>b\' type="BIGINT" autoIncrement="true"/>\n'
        '    </createTable>\n'))
    [e] = _recs("changelog.xml", text)
    row = e.sql.split("\n")[e.sql.count("\n")]
    line, _ = _in_file(text, 'type="BIGINT"')
    assert e.line + e.sql.count("\n") == line
    assert row.index("BIGINT") + 1 == _in_file(text, "BIGINT")[1]
    assert row.index("GENERATED") + 1 == _in_file(text, 'autoIncrement="true"')[1]


def test_broken_xml_inside_a_body_keeps_the_changes_before_it():
    text = _xml(_changeset('    <createSequence sequenceName="s1"/>\n    <sql>SELECT 1 < 2</sql>\n'
                           '    <createSequence sequenceName="s2"/>\n'))
    recs = _recs("changelog.xml", text)
    assert [" ".join(e.sql.split()) for e in recs] == ["CREATE SEQUENCE s1"]


# ---------------------------------------------------------------------------------------------------------------
# XML: hostile documents are refused, quickly
# ---------------------------------------------------------------------------------------------------------------

def _laughs() -> str:
    """The billion laughs: lol9 expands to 10⁹ "lol"s."""
    entities = [' <!ENTITY lol0 "lol">']
    entities += [f' <!ENTITY lol{i} "' + f"&lol{i - 1};" * 10 + '">' for i in range(1, 10)]
    return '<?xml version="1.0"?>\n<!DOCTYPE databaseChangeLog [\n' + "\n".join(entities) + "\n]>\n"


LAUGHS = _laughs()


@pytest.mark.parametrize("head", [
    LAUGHS,
    '<!DOCTYPE databaseChangeLog [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n',
    '<!DOCTYPE databaseChangeLog SYSTEM "http://127.0.0.1:9/changelog.dtd">\n',
    '<!DOCTYPE databaseChangeLog [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>\n',
], ids=["billion-laughs", "external-entity", "external-dtd", "parameter-entity"])
def test_hostile_dtds_are_refused_with_no_records(head):
    body = ('<databaseChangeLog>\n  <changeSet id="1" author="a">\n    <sql>SELECT \'&lol9;\' &amp;&amp; 1;</sql>\n'
            '    <createSequence sequenceName="s"/>\n  </changeSet>\n</databaseChangeLog>\n')
    text = head + body.replace("&lol9;", "&xxe;" if "xxe" in head else "&lol9;" if "lol9" in head else "x")
    started = time.perf_counter()
    assert _recs("changelog.xml", text) == []
    assert time.perf_counter() - started < 2
    # the same body without the DTD is read (so what refused it is the DTD)
    assert len(_recs("changelog.xml", body.replace("&lol9;", "x"))) == 2


def test_deeply_nested_xml_is_read_in_linear_time():
    """Each element's SQL text is made only when a change asks for it: made for every element, a body under n
    nested elements cost n times its length."""
    depth = 20000
    text = _xml(_changeset("    <sql>" + "<x>" * depth + "SELECT 1;" + "</x>" * depth + "</sql>\n"))
    started = time.perf_counter()
    [e] = _recs("changelog.xml", text)
    assert time.perf_counter() - started < 5
    assert e.sql.strip() == "SELECT 1;" and _where(e, "SELECT") == _in_file(text, "SELECT")


def test_a_yaml_alias_bomb_is_refused_quickly_and_plain_aliases_still_work():
    """PyYAML shares an aliased node; building the tree once per alias of an alias of an alias… would not end."""
    lines = ["databaseChangeLog:", "  - changeSet:", "      id: 1", "      changes:", "        - sql:",
             "            sql: SELECT 1", "  - bomb:", "      l0: &l0 {a: x, b: x, c: x, d: x, e: x, f: x, g: x}"]
    lines += [f"      l{i}: &l{i} {{" + ", ".join(f"k{j}: *l{i - 1}" for j in range(10)) + "}" for i in range(1, 10)]
    started = time.perf_counter()
    assert _recs("changelog.yaml", "\n".join(lines) + "\n") == []
    assert time.perf_counter() - started < 2
    aliased = ("databaseChangeLog:\n  - changeSet:\n      id: 1\n      changes:\n"
               "        - createTable:\n            tableName: a\n            columns:\n"
               "              - column: &id {name: id, type: bigint}\n"
               "        - createTable:\n            tableName: b\n            columns:\n              - column: *id\n")
    assert ["".join(e.sql.split()) for e in _recs("changelog.yaml", aliased)] == [
        "CREATETABLEa(idBIGINT)", "CREATETABLEb(idBIGINT)"]


# ---------------------------------------------------------------------------------------------------------------
# YAML and JSON: SQL bodies at their file positions
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("style", ["|", "|-", ">", "|2"])
def test_yaml_block_scalars(style):
    text = _yaml(f"            sql: {style}  # the statements\n"
                 "              SELECT 1;\n\n              DROP TABLE w;\n")
    [e] = _literals(_recs("changelog.yaml", text))
    assert _where(e, "SELECT") == _in_file(text, "SELECT") and _where(e, "DROP") == _in_file(text, "DROP")
    assert "#" not in e.sql


def test_yaml_plain_and_single_quoted_scalars():
    text = _yaml("            sql: SELECT 1;\n              DROP TABLE v;\n"
                 "        - sql:\n            sql: 'SELECT ''a'' FROM t; DROP TABLE y;'\n")
    plain, quoted = _literals(_recs("changelog.yaml", text))
    assert _where(plain, "DROP") == _in_file(text, "DROP")
    assert "'a'" in quoted.sql and _where(quoted, "FROM") == _in_file(text, "FROM")
    assert _where(quoted, "DROP") == _in_file(text, "DROP", 1)


def test_yaml_double_quoted_escapes_keep_tokens_whole_and_columns_right():
    """The old reading fell back to the decoded value at the quote when the scalar held an escape: every column
    after the first escape was off, and the lines after a ``\\n`` were lines the file does not have."""
    text = _yaml('            sql: "SELECT \\"a\\" FROM t;\\nSELECT \'\\u00e9\'; DROP TABLE x;"\n')
    [e] = _literals(_recs("changelog.yaml", text))
    assert '"a"' in e.sql and "'é'" in e.sql and "\n" not in e.sql
    for word in ("FROM", "SELECT '", "DROP"):
        assert _where(e, word) == _in_file(text, word)


def test_yaml_double_quoted_over_lines_and_escaped_line_breaks():
    text = _yaml('            sql: "SELECT 1;\n              DROP TABLE u;\\\n              "\n')
    [e] = _literals(_recs("changelog.yaml", text))
    assert _where(e, "DROP") == _in_file(text, "DROP")  # the old reading: on the line above


def test_yaml_escaped_line_break_ending_a_comment_keeps_the_sql_after_it():
    text = _yaml('            sql: "SELECT 1; -- c\\nDROP TABLE k;"\n')
    [e] = _literals(_recs("changelog.yaml", text))
    assert "-- c\nDROP TABLE k;" in e.sql  # the decoded value: DROP is not swallowed by the comment


def test_json_strings_with_escapes():
    """The difference found on Liquibase's own integration changelog (json/common.tests.changelog.json): several
    statements in one JSON string joined by ``\\n`` escapes are each reported on that string's line."""
    text = ('{ "databaseChangeLog": [ { "changeSet": { "id": "1", "author": "a", "changes": [\n'
            '\t{ "sql": { "sql": "insert into \\"T\\" (id) values (1);\\ninsert into t (id) values (2);'
            '\\/*x*\\/" } },\n'
            '\t{ "createView": { "viewName": "v", "selectQuery": "SELECT a\\tFROM b" } } ] } } ] }\n')
    recs = _recs("changelog.json", text)
    [e] = _literals(recs)
    assert '"T"' in e.sql and "/*x*/" in e.sql
    assert _where(e, "(id) values (1)") == _in_file(text, "(id) values (1)")
    assert _where(e, "insert into t") == _in_file(text, "insert into t")
    assert [" ".join(r.sql.split()) for r in recs if not r.literal] == ["CREATE VIEW v AS SELECT a FROM b"]


def test_yaml_identity_clause_at_the_autoincrement_key():
    text = ("databaseChangeLog:\n  - changeSet:\n      id: 1\n      author: a\n      changes:\n"
            "        - createTable:\n            tableName: t\n            columns:\n"
            "              - column: {name: id, remarks: 'autoIncrement: 1', type: bigint, autoIncrement:   true}\n")
    [e] = _recs("changelog.yaml", text)
    assert "GENERATED BY DEFAULT AS IDENTITY" in e.sql and e.line == 6
    row = e.sql.split("\n")[-1]
    assert row.index("BIGINT") + 1 == _in_file(text, "bigint")[1]
    assert row.index("GENERATED") + 1 == _in_file(text, "autoIncrement", 1)[1]


def test_unreadable_yaml_gives_nothing():
    assert _recs("changelog.yaml", "databaseChangeLog:\n  - changeSet: [\n") == []


# ---------------------------------------------------------------------------------------------------------------
# dbms filters
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dbms, kept", [
    (None, True), ("postgresql", True), ("h2, postgresql", True), ("all", True), ("!oracle", True),
    ("oracle", False), ("!postgresql", False), ("none", False), ("h2,oracle", False), ("!h2, !postgresql", False),
])
def test_dbms_filters_on_changesets_and_changes_in_xml_and_yaml(dbms, kept):
    attr = f' dbms="{dbms}"' if dbms else ""
    on_set = _xml(_changeset('    <createSequence sequenceName="s"/>\n', attrs=attr))
    on_change = _xml(_changeset(f'    <createSequence sequenceName="s"{attr}/>\n    <sql{attr}>TRUNCATE t</sql>\n'))
    yaml_key = f"      dbms: {dbms}\n" if dbms else ""
    yml = ("databaseChangeLog:\n  - changeSet:\n      id: 1\n" + yaml_key +
           "      changes:\n        - sql:\n" + (f"            dbms: '{dbms}'\n" if dbms else "") +
           "            sql: TRUNCATE t\n")
    assert len(_recs("changelog.xml", on_set)) == (1 if kept else 0)
    assert len(_recs("changelog.xml", on_change)) == (2 if kept else 0)
    assert len(_recs("changelog.yaml", yml)) == (1 if kept else 0)
