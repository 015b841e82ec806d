"""Writing output files without ever destroying the user's files.

Every file dsql-audit writes (``-o`` of scan, replay, report and catalog, ``--write-baseline``, ``catalog
--capture`` and ``--schema-out``, convert's directory, ``convert --python-retry --write``) goes through
here:

- it is written to a temporary file in the target's own directory, flushed and fsync'ed, then renamed over
  the target (``os.replace``): a run that is interrupted or fails (full disk, Ctrl-C) leaves the previous
  file as it was, and never a half-written one;
- an existing target keeps its permission bits (and owner, where allowed); a new one gets the umask's;
- a symbolic link is written through (the file it points to is replaced, the link stays);
- a target that is not a regular file (``/dev/stdout``, ``/dev/null``, a FIFO) is written in place;
- an output that is one of the command's inputs — by path, through a symbolic link, or a hard link (same
  device and inode) — is refused before any work is done (``refuse_inputs``).

Problems are ``OutputError`` naming the file; the CLI turns them into exit code 2.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator


class OutputError(Exception):
    """An output that cannot or must not be written (a usage error: exit code 2); the message names it."""


def printable(path) -> str:
    """``path`` as text that can be printed and encoded: bytes of a file name that are not UTF-8 (kept by
    Python as surrogate escapes) are shown as ``\\xNN``."""
    s = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        try:
            return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a surrogate no file name decodes to
            return s.encode("utf-8", "backslashreplace").decode("utf-8")


def identity(path) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` names (links followed), or None when there is none."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def same_file(a, b) -> bool:
    """``a`` and ``b`` are one file: the same resolved path, or the same device and inode (a hard link)."""
    try:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
    except (OSError, ValueError):
        pass
    ia = identity(a)
    return ia is not None and ia == identity(b)


def _inside(child: str, parent: str) -> bool:
    return child == parent or child.startswith(parent.rstrip(os.sep) + os.sep)


_OWN = (re.compile(r'^\s*\{\s*"tool"\s*:\s*(?:\{\s*"name"\s*:\s*)?"dsql-audit[" ]'),  # JSON report, baseline
        re.compile(r'<testsuites name="dsql-audit"'),  # JUnit
        re.compile(r'"\$schema"\s*:\s*"[^"]*sarif[^"]*".*?"name"\s*:\s*"dsql-audit', re.S))  # SARIF


def is_own_report(path) -> bool:
    """The file is a report or baseline dsql-audit wrote (a previous run's ``-o``): replacing it destroys
    nothing of the user's, even when a scan of its folder would read it."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096).decode("utf-8", "replace")
    except OSError:
        return False
    return any(p.search(head) for p in _OWN)


def refuse_inputs(output, inputs: Iterable, *, label: str = "-o", folders: Iterable = ()) -> None:
    """Raise OutputError when ``output`` is one of ``inputs`` (paths given or found), by resolved path or
    by device and inode, or an existing file inside one of ``folders`` (input folders whose files are
    read), unless it is a report dsql-audit wrote."""
    out_id = identity(output)
    if out_id is None:
        return  # nothing there yet: it cannot be an input
    real = os.path.realpath(output)
    for i in inputs:
        if i is None:
            continue
        if isinstance(i, tuple):
            hit = i == out_id
        else:
            hit = same_file(output, i)
        if hit:
            shown = "" if isinstance(i, tuple) or printable(i) == printable(output) else f" ({printable(i)})"
            raise OutputError(f"{label} {printable(output)} is one of the inputs{shown}: writing it would destroy "
                              "that input; write the output somewhere else")
    folders = [f for f in folders if f is not None and os.path.isdir(f)]
    if not folders or is_own_report(output):
        return
    for folder in folders:
        top = os.path.realpath(folder)
        if _inside(real, top):
            raise OutputError(f"{label} {printable(output)} is a file inside the input folder {printable(folder)}, "
                              "which is read as input: write the output somewhere else")
    if os.stat(output).st_nlink > 1:  # a hard link elsewhere to a file inside an input folder
        for folder in folders:
            for dirpath, _, names in os.walk(folder):
                for name in names:
                    if identity(os.path.join(dirpath, name)) == out_id:
                        raise OutputError(f"{label} {printable(output)} is a hard link to "
                                          f"{printable(os.path.join(dirpath, name))}, an input: write the output "
                                          "somewhere else")


def check(path, *, label: str = "-o") -> None:
    """Before any work is done: ``path`` can be written (its directory exists and takes new files, it is
    not a directory or a read-only file). Raises OutputError saying why not."""
    p = Path(path)
    shown = printable(path)
    if p.is_dir():
        raise OutputError(f"{label} {shown}: is a directory")
    real = Path(os.path.realpath(p))
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputError(f"{label} {shown}: {exc.strerror or exc}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        if not os.access(real, os.W_OK):
            raise OutputError(f"{label} {shown}: not writable")
        return  # a device or pipe: written in place
    parent = real.parent
    if not parent.is_dir():
        raise OutputError(f"{label} {shown}: the directory {printable(parent)} does not exist")
    if st is not None and not os.access(real, os.W_OK):
        raise OutputError(f"{label} {shown}: the file is read-only")
    try:  # the one sure test: a temporary file can be made beside the target
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".dsql-audit-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{label} {shown}: cannot write in {printable(parent)}: {exc.strerror or exc}") from None


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _settle(tmp: str, st, executable: bool) -> None:
    """The temporary file gets the target's permissions (and owner) when it exists, else the umask's."""
    if st is not None:
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except OSError:
                pass
    else:
        os.chmod(tmp, (0o777 if executable else 0o666) & ~_umask())


def _error(path, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {printable(path)}: {exc.strerror or exc}")


def _target(path):
    real = Path(os.path.realpath(path))  # a symbolic link is written through
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _error(path, exc) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(f"cannot write {printable(path)}: is a directory")
    return real, st


@contextmanager
def atomic_open(path, mode: str = "w", *, encoding: str = "utf-8", executable: bool = False) -> Iterator:
    """A file object to write ``path`` through (mode "w" or "wb"): nothing reaches ``path`` unless the
    block ends normally; then the whole content replaces it in one rename."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode {mode!r}")
    text = dict(encoding=encoding, errors="replace") if mode == "w" else {}
    real, st = _target(path)
    if st is not None and not stat.S_ISREG(st.st_mode):  # /dev/stdout, /dev/null, a FIFO: in place
        try:
            with open(real, mode, **text) as fh:
                yield fh
        except OSError as exc:
            raise _error(path, exc) from None
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
    except OSError as exc:
        raise _error(path, exc) from None
    with _replacing(path, real, st, tmp, executable):
        with os.fdopen(fd, mode, **text) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_bytes(path, data: bytes, *, executable: bool = False) -> None:
    with atomic_open(path, "wb", executable=executable) as fh:
        fh.write(data)


def write_text(path, text: str, *, executable: bool = False) -> None:
    """``text`` as UTF-8 (anything unencodable, such as a lone surrogate, replaced), atomically."""
    write_bytes(path, text.encode("utf-8", "replace"), executable=executable)


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """A temporary path beside ``path`` for another program to write (``pg_dump -f``); it replaces
    ``path`` when the block ends normally, and is removed otherwise."""
    real, st = _target(path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        yield real
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise _error(path, exc) from None
    with _replacing(path, real, st, tmp, False):
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def _replacing(path, real: Path, st, tmp: str, executable: bool) -> Iterator[None]:
    """The block writes ``tmp``; when it ends normally ``tmp`` takes ``real``'s permissions and replaces it
    in one rename, else ``tmp`` is removed (an OSError becomes an OutputError naming ``path``)."""
    try:
        yield
        _settle(tmp, st, executable)
        os.replace(tmp, real)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _error(path, exc) from None
        raise
    _fsync_dir(real.parent)
