"""The SQL that makes the embedded PostgreSQL one DSQL cluster's database: the database itself, the roles
(clients are ``admin``, with what DSQL's admin holds), and DSQL's ``sys`` schema with its jobs table and
``sys.wait_for_job`` procedure."""

from __future__ import annotations

# The engine's own connections use PostgreSQL's bootstrap superuser; clients get ``admin``, which holds what
# DSQL's admin holds (DSQL-FACTS §1.1 Roles: CREATE on the database and its schemas, CREATE ROLE … LOGIN,
# GRANT/REVOKE on its objects) and nothing of the host: no superuser, no pg_read_server_files and friends
# (PostgreSQL 16's CREATEROLE cannot grant them), no signals to the engine's superuser backends.
INTERNAL_ROLE = "postgres"
CLIENT_ROLE = "admin"
BOOTSTRAP = [
    "DROP DATABASE IF EXISTS postgres",
    "CREATE DATABASE postgres TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'",
    "ALTER DATABASE postgres SET timezone TO 'UTC'",
    "ALTER DATABASE postgres SET default_transaction_isolation TO 'repeatable read'",
]
# run at every start, so a data directory made by an older dsql-audit (admin a superuser) is brought down too
ROLES = [
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'admin') THEN "
    "CREATE ROLE admin LOGIN; END IF; END $$",
    "ALTER ROLE admin NOSUPERUSER NOCREATEDB CREATEROLE LOGIN NOREPLICATION NOBYPASSRLS INHERIT",
    # roles a client created while admin was still a superuser keep none of its powers
    "DO $$ DECLARE r record; BEGIN FOR r IN SELECT rolname FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%' "
    "AND rolname NOT IN ('postgres', 'admin') AND (rolsuper OR rolreplication OR rolbypassrls OR rolcreatedb) "
    "LOOP EXECUTE format('ALTER ROLE %I NOSUPERUSER NOREPLICATION NOBYPASSRLS NOCREATEDB', r.rolname); "
    "END LOOP; END $$",
    "GRANT CREATE, TEMPORARY, CONNECT ON DATABASE postgres TO admin",
    "GRANT ALL ON SCHEMA public TO admin",
    # the engine alone may end or cancel a backend (it does so to decide OCC conflicts); DSQL offers clients
    # no way to signal the cluster's sessions
    "REVOKE EXECUTE ON FUNCTION pg_terminate_backend(integer, bigint), pg_cancel_backend(integer) FROM PUBLIC",
]
SYS_SCHEMA = [
    "CREATE SCHEMA sys",
    "GRANT USAGE ON SCHEMA sys TO PUBLIC",
    """CREATE TABLE sys.jobs (job_id text PRIMARY KEY, status text NOT NULL, details text, job_type text,
         class_id oid, object_id oid, object_name text, start_time timestamptz, update_time timestamptz)""",
    "GRANT SELECT ON sys.jobs TO PUBLIC",
    # DSQL's own procedure: CALL sys.wait_for_job('<job id>') returns one boolean row (DSQL-REFERENCE §6)
    r"""CREATE PROCEDURE sys.wait_for_job(job_id text, INOUT wait_for_job boolean DEFAULT NULL)
        LANGUAGE plpgsql AS $$
        DECLARE st text;
        BEGIN
          IF job_id !~ '^[a-z2-7]{26}$' THEN
            RAISE EXCEPTION 'Unable to convert text to UUID' USING ERRCODE = '22P02';
          END IF;
          SELECT status INTO st FROM sys.jobs j WHERE j.job_id = wait_for_job.job_id;
          wait_for_job := coalesce(st = 'completed', false);
        END $$""",
]
