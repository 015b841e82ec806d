"""Conformance scenarios for the engine: quotas at DDL time, schema conflicts (OC001), the 10 MiB bound,
async jobs, connection lifetime and the findings every violation leaves (DSQL-REFERENCE §4–§7).
Each scenario states the outcome, SQLSTATE and the statement where DSQL reports it."""

from __future__ import annotations


from dsql_audit.engine.script import run_script


def _cols(n: int) -> str:
    return ", ".join(f"c{i} int" for i in range(1, n + 1))


def failures(outcomes):
    return [(o.session, o.sql.split()[0], o.sqlstate, o.message) for o in outcomes if not o.ok]


def test_columns_255_accepted_256_refused(scripted_engine):
    engine = scripted_engine()
    out = run_script(engine, f"""
        CREATE TABLE ok254 (id int PRIMARY KEY, {_cols(253)});
        CREATE TABLE no255 (id int PRIMARY KEY, {_cols(255)});
        ALTER TABLE ok254 ADD COLUMN one_more int;
        SELECT count(*) FROM pg_class WHERE relname = 'no255';
    """)
    assert failures(out) == [("main", "CREATE", "54011", "tables can have at most 255 columns")]
    assert out[2].ok and out[3].rows == [(0,)]  # 255 columns via ALTER is fine; the refused table is gone
    out = run_script(engine, "ALTER TABLE ok254 ADD COLUMN too_many int;")
    assert failures(out) == [("main", "ALTER", "54011", "tables can have at most 255 columns")]
    assert [f["rule"] for f in engine.findings] == ["too-many-columns", "too-many-columns"]


def test_24_indexes_counting_the_primary_key(scripted_engine):
    engine = scripted_engine()
    script = f"CREATE TABLE t (id int PRIMARY KEY, {_cols(24)});\n"
    script += "".join(f"CREATE INDEX ASYNC t_c{i} ON t (c{i});\n" for i in range(1, 24))  # 1 + 23 = 24
    script += "CREATE INDEX ASYNC t_c24 ON t (c24);\n"
    out = run_script(engine, script)
    assert all(o.ok for o in out[:-1])
    assert failures(out) == [("main", "CREATE", "54000", "more than 24 indexes per table are not allowed")]
    assert engine.findings[-1]["rule"] == "too-many-indexes"


def test_schemas_and_primary_key_width(scripted_engine):
    engine = scripted_engine()
    out = run_script(engine, "".join(f"CREATE SCHEMA s{i};\n" for i in range(1, 12)))
    assert failures(out) == [("main", "CREATE", "54000", "more than 10 schemas not allowed")]
    out = run_script(engine, "CREATE TABLE k (a int, b int, c int, d int, e int, f int, g int, h int, i int, "
                             "PRIMARY KEY (a, b, c, d, e, f, g, h, i));")
    assert failures(out) == [("main", "CREATE", "54011", "more than 8 column keys in an index are not supported")]


def test_ddl_makes_open_transactions_stale_oc001(scripted_engine):
    engine = scripted_engine()
    out = run_script(engine, """
        CREATE TABLE acct (id int PRIMARY KEY, balance int);
        INSERT INTO acct VALUES (1, 100);
        -- session a
        BEGIN;
        UPDATE acct SET balance = 1 WHERE id = 1;
        -- session b
        ALTER TABLE acct ADD COLUMN note text;
        -- session a
        SELECT balance FROM acct WHERE id = 1;
        COMMIT;
        -- session b
        SELECT balance FROM acct WHERE id = 1;
    """)
    # the ALTER did not wait for a's open transaction; a's next statement gets OC001 and its COMMIT rolls back
    assert failures(out) == [("a", "SELECT", "40001", "schema has been updated by another transaction (OC001)")]
    assert out[6].command_tag == "ROLLBACK" and out[7].rows == [(100,)]
    assert [(f["rule"], f["variant"]) for f in engine.findings] == [("occ-conflict", "schema")]


def test_ddl_racing_ddl_and_a_read_only_reader(scripted_engine):
    engine = scripted_engine()
    out = run_script(engine, """
        CREATE TABLE t (id int PRIMARY KEY);
        -- session reader
        BEGIN READ ONLY;
        SELECT count(*) FROM t;
        -- session a
        BEGIN;
        CREATE TABLE a1 (id int PRIMARY KEY);
        -- session b
        CREATE TABLE b1 (id int PRIMARY KEY);
        -- session a
        COMMIT;
        -- session reader
        COMMIT;
    """)
    # a's DDL started before b's committed: a loses at COMMIT; the reader used nothing after the change
    assert failures(out) == [("a", "COMMIT", "40001", "schema has been updated by another transaction (OC001)")]
    assert out[-1].command_tag == "COMMIT"


def test_size_bound_at_commit_with_detail(scripted_engine):
    from dsql_audit.engine import DsqlError

    engine = scripted_engine()
    s = engine.session()
    s.execute("CREATE TABLE blobs (id int PRIMARY KEY, body text)")
    s.execute("CREATE INDEX ASYNC blobs_body ON blobs (substr(body, 1, 10))")
    s.execute("BEGIN")
    chunk = "(SELECT string_agg(md5(random()::text || g || i), '') FROM generate_series(1, 3000) i)"
    for lo in range(0, 120, 40):  # 120 rows of ~96 kB: ~11.5 MB, each statement fine on its own
        assert s.execute(f"INSERT INTO blobs SELECT g, {chunk} FROM generate_series({lo + 1}, {lo + 40}) g"
                         ).command_tag == "INSERT 0 40"
    assert s.bytes > 10 * 1024 * 1024
    try:
        s.execute("COMMIT")
        raise AssertionError("COMMIT over 10 MiB succeeded")
    except DsqlError as e:
        assert (e.sqlstate, e.message) == ("54000", "transaction size limit 10mb exceeded")
        assert e.detail.startswith("Current transaction size ") and e.detail.endswith("mb > 10mb")
    assert s.execute("SELECT count(*) FROM blobs").rows == [(0,)]
    # RETURNING the user asked for is unchanged by the measuring column
    r = s.execute("INSERT INTO blobs VALUES (1, 'x') RETURNING id, body")
    assert r.columns == ["id", "body"] and r.rows == [(1, "x")]
    assert s.execute("UPDATE blobs SET body = 'y' WHERE id = 1").columns == []


def test_async_jobs_build_in_the_background(scripted_engine):
    engine = scripted_engine()
    s = engine.session()
    s.execute("CREATE TABLE u (id int PRIMARY KEY, v int, w int)")
    s.execute("INSERT INTO u VALUES (1, 5, 1), (2, 5, 2)")
    good = s.execute("CREATE INDEX ASYNC u_w ON u (w)").rows[0][0]
    # at once: the build goes on in the background (its state, not a clock, says so: a loaded machine may take
    # longer than the job's latency to answer any statement)
    assert s.execute(f"SELECT status FROM sys.jobs WHERE job_id = '{good}'").rows[0][0] in ("submitted", "processing")
    bad = s.execute("CREATE UNIQUE INDEX ASYNC u_v ON u (v)").rows[0][0]  # the statement succeeds …
    status = dict(s.execute("SELECT job_id, status FROM sys.jobs").rows)
    assert status[good] in ("submitted", "processing")
    assert s.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'u_w'::regclass").rows == [(False,)]
    assert s.execute(f"CALL sys.wait_for_job('{good}')").rows == [(True,)]
    assert s.execute(f"CALL sys.wait_for_job('{bad}')").rows == [(False,)]  # … the job fails, no error
    jobs = {r[0]: r[1:] for r in s.execute("SELECT job_id, status, details, job_type, object_name FROM sys.jobs").rows}
    assert jobs[good] == ("completed", None, "INDEX_BUILD", "public.u_w")
    assert jobs[bad] == ("failed", "Found duplicate key while validating index for UCVs", "INDEX_BUILD", "public.u_v")
    assert s.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'u_w'::regclass").rows == [(True,)]
    # a rolled-back CREATE INDEX ASYNC submits nothing; an unknown table fails the statement itself
    s.execute("BEGIN")
    s.execute("CREATE INDEX ASYNC u_id_w ON u (id, w)")
    s.execute("ROLLBACK")
    assert s.execute("SELECT count(*) FROM sys.jobs").rows == [(2,)]
    out = run_script(engine, "CREATE INDEX ASYNC x ON no_such_table (a);")
    assert failures(out) == [("main", "CREATE", "42P01", 'relation "no_such_table" does not exist')]


def test_validate_constraint_job(scripted_engine):
    engine = scripted_engine()
    s = engine.session()
    s.execute("CREATE TABLE c (id int PRIMARY KEY, n int)")
    s.execute("INSERT INTO c VALUES (1, -1)")
    s.execute("ALTER TABLE c ADD CONSTRAINT n_pos CHECK (n > 0) NOT VALID")
    r = s.execute("ALTER TABLE ASYNC c VALIDATE CONSTRAINT n_pos")
    assert r.command_tag == "ALTER TABLE" and r.columns == ["job_id"]
    assert s.execute(f"CALL sys.wait_for_job('{r.rows[0][0]}')").rows == [(False,)]
    assert s.execute("SELECT convalidated FROM pg_constraint WHERE conname = 'n_pos'").rows == [(False,)]


def test_connection_lifetime(scripted_engine):
    engine = scripted_engine()
    out = run_script(engine, "SELECT 1;\n-- advance 3599\nSELECT 2;\n-- advance 2\nSELECT 3;\nSELECT 4;")
    assert [o.sqlstate for o in out] == [None, None, "08006", "08006"]
    assert [f["rule"] for f in engine.findings] == ["connection-lifetime"]


def test_every_violation_is_a_finding_with_context(scripted_engine):
    engine = scripted_engine()
    run_script(engine, """
        CREATE TABLE t (id int PRIMARY KEY);
        BEGIN;
        INSERT INTO t SELECT g FROM generate_series(1, 3001) g;
        COMMIT;
        TRUNCATE t;
    """)
    got = [(f["rule"], f["code"], f["sqlstate"]) for f in engine.findings]
    assert got == [("transaction-row-limit", "DSQL802", "54000"), ("truncate", "DSQL401", "0A000")]
    f = engine.findings[0]
    assert f["statement"].startswith("INSERT INTO t") and f["session"] and f["transaction"] and f["time"]


def test_repeated_conflicts_keep_no_state(scripted_engine):
    engine = scripted_engine()
    script = "CREATE TABLE h (id int PRIMARY KEY, n int);\nINSERT INTO h VALUES (1, 0);\n"
    for _ in range(30):
        script += ("-- session a\nBEGIN;\nUPDATE h SET n = n + 1 WHERE id = 1;\n"
                   "-- session b\nBEGIN;\nUPDATE h SET n = n + 1 WHERE id = 1;\n"
                   "-- session a\nCOMMIT;\n-- session b\nCOMMIT;\n")
    out = run_script(engine, script)
    assert [o.sqlstate for o in out if not o.ok] == ["40001"] * 30  # b loses every round
    assert not any(s.pending for s in engine.sessions.values())
    assert engine.session().execute("SELECT n FROM h").rows == [(30,)]
