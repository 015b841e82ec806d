"""A cached copy of initdb's output: a new data directory is a copy of it (about a third of initdb's time).

initdb makes the same files every time for one PostgreSQL build, and it is most of an engine's start (`run`
and every test starts one). The first engine to run initdb copies the result, before PostgreSQL ever started
on it, into the user's cache: ``$DSQL_AUDIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/dsql-audit`` or
``~/.cache/dsql-audit``; ``off`` turns it off. The copy is made in a folder of its own and renamed into
place, so a reader never sees half of one; it is used only when this user owns it and nobody else may write
to it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile

_PREFIX = "initdb-pg16-"


def cache_root() -> str | None:
    where = os.environ.get("DSQL_AUDIT_CACHE_DIR")
    if where == "off":
        return None
    if not where:  # beside the rule catalog's cache (toml_cache.py)
        where = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
                             "dsql-audit")
    return where


def _key(bin_path) -> str:
    """One PostgreSQL build: its postgres program (path, size, time) and this user."""
    try:
        st = os.stat(os.path.join(str(bin_path), "postgres"))
        build = f"{st.st_size}|{st.st_mtime_ns}"
    except OSError:
        build = "?"
    return hashlib.sha256(f"{bin_path}|{build}|{os.geteuid()}".encode()).hexdigest()[:16]


def _private(path: str) -> bool:
    """Ours, and no one else may write to it (a copy planted by another user is never used)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def copy_into(data_dir: str, bin_path, owner: str | None) -> bool:
    """Fill the (empty) ``data_dir`` from the cached copy; False when there is none (run initdb then).
    ``owner``: the system user PostgreSQL runs as when this process is root (pgserver's), who must own it."""
    root = cache_root()
    if root is None:
        return False
    template = os.path.join(root, _PREFIX + _key(bin_path))
    if not (_private(root) and _private(template) and os.path.exists(os.path.join(template, "PG_VERSION"))):
        return False
    try:
        shutil.copytree(template, data_dir, symlinks=True, dirs_exist_ok=True)
        if owner is not None:
            import pwd

            user = pwd.getpwnam(owner)
            for top, dirs, files in os.walk(data_dir):
                for name in (*dirs, *files):
                    os.lchown(os.path.join(top, name), user.pw_uid, user.pw_gid)
        return True
    except (OSError, KeyError):  # a partial copy: emptied, and initdb makes the directory instead
        empty(data_dir)
        return False


def empty(data_dir: str) -> None:
    """Remove what is in ``data_dir`` (the directory itself stays: its lock is held on it)."""
    for name in os.listdir(data_dir):
        path = os.path.join(data_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass


def forget(bin_path) -> None:
    """Drop the cached copy (PostgreSQL would not start on a copy of it)."""
    root = cache_root()
    if root is not None:
        shutil.rmtree(os.path.join(root, _PREFIX + _key(bin_path)), ignore_errors=True)


def keep(data_dir: str, bin_path) -> None:
    """Cache ``data_dir`` as initdb left it (PostgreSQL not started on it yet). Never fails the caller."""
    root = cache_root()
    if root is None:
        return
    name = _PREFIX + _key(bin_path)
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        if not _private(root) or os.path.exists(os.path.join(root, name)):
            return
        work = tempfile.mkdtemp(prefix=".making-", dir=root)
        try:
            target = os.path.join(work, "data")
            shutil.copytree(data_dir, target, symlinks=True)
            os.chmod(target, 0o700)
            os.rename(target, os.path.join(root, name))  # atomic; fails if another process was first
        except OSError:
            pass
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for other in os.listdir(root):  # copies made by another PostgreSQL build
            if other.startswith(_PREFIX) and other != name:
                shutil.rmtree(os.path.join(root, other), ignore_errors=True)
    except OSError:
        pass
