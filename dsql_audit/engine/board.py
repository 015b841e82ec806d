"""The OCC state every session must see, whichever process runs it: `serve --workers N` runs sessions in N
processes over one embedded PostgreSQL, and DSQL's commit adjudication (first committer wins, a DDL dooms
the transactions it met) must be one decision for all of them.

A Board is a shared memory file (/dev/shm when there is one) laid out as ctypes structures, and two locks
over every thread of every process: ``adjudicator`` (COMMIT decisions, one at a time, cluster.py) and ``lock``
(the board's own updates) — each a thread lock plus a POSIX record lock on one byte of the file, which the
kernel releases when a process dies holding it.

One slot per live session holds what another session's writer needs to know about it — its backend pid,
session id, transaction number, whether it is committing — and what a winner does to it — doomed,
schema-doomed, wounded, the winners' statements, the backend it ended. While no worker is attached the record
locks are not taken (one process needs only the thread locks). The header holds the catalog version
(OC001), the next session id, the clients admitted (--max-connections) and each worker's connections. The
committed table keeps, for transactions some open transaction's pending write met, whether they committed —
an entry lives while a pending write names it (a FOR UPDATE leaves no row version behind to tell later).

A slot is found by backend pid or cancel key, and an entry by its transaction, with mmap.find over the
packed value (C speed, checked for alignment): only the blocked-write, COMMIT and CancelRequest paths look, and
a COMMIT looks only while some pending write names a transaction at all.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import struct
import json
import mmap
import os
import tempfile
import threading
import time

MAGIC = 0x44534F43  # "DSOC"
PREFIX = "dsql-audit-board-"  # then the owner's pid and a dash (watchdog.py knows this)
WORKERS = 64  # connection counters in the header (workers beyond it are not counted)
COMMITTED = 1024  # entries of the committed table
DOOMED_BY = 3000  # bytes of the winners' statements kept for a loser's report
KINDS = {None: 0, "data": 1, "schema": 2}
KIND_NAMES = {v: k for k, v in KINDS.items()}


class Header(ctypes.Structure):
    _fields_ = [("magic", ctypes.c_uint32), ("slots", ctypes.c_uint32), ("catalog_version", ctypes.c_int64),
                ("next_session_id", ctypes.c_int64), ("admitted", ctypes.c_int32), ("referenced", ctypes.c_int32),
                ("attached", ctypes.c_int32), ("pad", ctypes.c_int32), ("connections", ctypes.c_int32 * WORKERS)]


class Slot(ctypes.Structure):
    _fields_ = [("used", ctypes.c_uint8), ("committing", ctypes.c_uint8), ("doomed", ctypes.c_uint8),
                ("schema_doomed", ctypes.c_uint8), ("wounded", ctypes.c_uint8), ("wound_kind", ctypes.c_uint8),
                ("busy", ctypes.c_uint8), ("pad", ctypes.c_uint8), ("pid", ctypes.c_int32),
                ("wound_pid", ctypes.c_int32), ("cancel_key", ctypes.c_int32), ("cancel_secret", ctypes.c_int32),
                ("worker", ctypes.c_int32), ("session_id", ctypes.c_int64), ("txn_number", ctypes.c_int64),
                ("doomed_by_len", ctypes.c_uint32), ("doomed_by", ctypes.c_char * DOOMED_BY)]


class Entry(ctypes.Structure):
    _fields_ = [("session_id", ctypes.c_int64), ("txn_number", ctypes.c_int64), ("refs", ctypes.c_int32),
                ("committed", ctypes.c_int32)]


def _lock_record(fd: int, at: int) -> None:
    """fcntl's record lock on byte ``at``, waiting for it. The kernel answers EDEADLK when this process waits for
    a process that waits for a lock this process holds — but record locks belong to processes, not threads:
    the holder here may be another thread, about to release it (the engine takes the adjudicator, then the
    board lock, never the other way round, so no real deadlock exists). The request is made again."""
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX, 1, at)
            return
        except OSError as exc:
            if exc.errno != errno.EDEADLK:
                raise
            time.sleep(0.0002)


class SharedLock:
    """A lock over threads (a thread lock) and processes (fcntl's record lock on byte ``at`` of the file: one
    thread per process asks for it, and a dead holder's lock is released by the kernel). While no worker
    process is attached (``shared()`` false) the record lock is not taken: one process needs only the thread
    lock."""

    def __init__(self, fd: int, at: int, shared):
        self._fd, self._at, self._shared = fd, at, shared
        self._local = threading.Lock()
        self._held_shared = False

    def acquire(self) -> bool:
        self._local.acquire()
        if self._shared():
            try:
                _lock_record(self._fd, self._at)
            except BaseException:
                self._local.release()
                raise
            self._held_shared = True
        return True

    def release(self) -> None:
        try:
            if self._held_shared:
                self._held_shared = False
                fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, self._at)
        finally:
            self._local.release()

    __enter__ = acquire

    def __exit__(self, *exc) -> None:
        self.release()


class BoardFull(Exception):
    """Every slot is taken (more sessions than the board was made for)."""


class Board:
    """The shared OCC state (see the module's docstring). ``create`` in the process that owns the engine;
    ``attach`` (from ``spec()``) in a worker."""

    def __init__(self, path: str, fd: int, slots: int, owner: bool, worker: int = 0):
        self.path, self._fd, self.owner, self.worker = path, fd, owner, worker
        size = _size(slots)
        self._map = mmap.mmap(fd, size)
        self.header = Header.from_buffer(self._map, 0)
        self.slots = (Slot * slots).from_buffer(self._map, ctypes.sizeof(Header))
        self.committed = (Entry * COMMITTED).from_buffer(self._map, ctypes.sizeof(Header) + ctypes.sizeof(Slot) * slots)
        # (record locks are per process and file: this process keeps the file open once, here)
        shared = self._shared
        self.adjudicator, self.lock = SharedLock(fd, 0, shared), SharedLock(fd, 1, shared)
        self._slots_at = ctypes.sizeof(Header)
        self._entries_at = self._slots_at + ctypes.sizeof(Slot) * slots
        self._end = self._entries_at + ctypes.sizeof(Entry) * COMMITTED

    @classmethod
    def create(cls, slots: int = 256) -> "Board":
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        # named after this process: if it is killed, its engine's watchdog removes the file (watchdog.py)
        fd, path = tempfile.mkstemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base)
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, _size(slots))
        board = cls(path, fd, slots, owner=True)
        board.header.magic, board.header.slots, board.header.next_session_id = MAGIC, slots, 0
        return board

    def spec(self, worker: int) -> dict:
        """What a worker process needs to attach."""
        return {"path": self.path, "slots": self.header.slots, "worker": worker}

    @classmethod
    def attach(cls, spec: dict) -> "Board":
        fd = os.open(spec["path"], os.O_RDWR)
        board = cls(spec["path"], fd, spec["slots"], owner=False, worker=spec["worker"])
        if board.header.magic != MAGIC:
            raise RuntimeError(f"{spec['path']} is not an engine's board")
        # from here on every process takes the record locks (the owner's next acquire sees the count). The
        # count itself is changed under the record lock, taken directly: before it, no one else takes it
        _lock_record(fd, 1)
        board.header.attached += 1
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, 1)
        return board

    def _shared(self) -> bool:
        return self.header is not None and self.header.attached > 0

    def close(self) -> None:
        if not self.owner:
            with self.lock:
                self.header.attached -= 1
        # the ctypes views hold exports of the map: drop them first
        self.header = self.slots = self.committed = None
        try:
            self._map.close()
        except BufferError:  # a view still alive somewhere: the map goes with the process
            pass
        os.close(self._fd)
        if self.owner:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    # -- sessions --------------------------------------------------------------------------------------------
    def claim(self) -> tuple[int, int]:
        """A free slot and a new session id (ids are unique over every worker and the board's life)."""
        with self.lock:
            for index, slot in enumerate(self.slots):
                if not slot.used:
                    ctypes.memset(ctypes.addressof(slot), 0, ctypes.sizeof(Slot))
                    self.header.next_session_id += 1
                    slot.used, slot.worker, slot.session_id = 1, self.worker, self.header.next_session_id
                    return index, slot.session_id
        raise BoardFull(f"more than {len(self.slots)} sessions at once")

    def release(self, index: int) -> None:
        with self.lock:
            self.slots[index].used = 0
            self.slots[index].pid = 0

    def release_worker(self, worker: int) -> None:
        """Free the slots of a worker process that died (its sessions died with it)."""
        with self.lock:
            for slot in self.slots:
                if slot.used and slot.worker == worker:
                    slot.used, slot.pid = 0, 0
            if worker < WORKERS:
                self.header.connections[worker] = 0

    def by_pid(self, pid: int) -> int | None:
        return self._find_slot(Slot.pid.offset, struct.pack("=i", pid), lambda slot: slot.pid == pid) if pid else None

    def _find_slot(self, offset: int, packed: bytes, match) -> int | None:
        """The used slot whose field at ``offset`` holds ``packed`` (mmap.find, then alignment and a check)."""
        size, at = ctypes.sizeof(Slot), self._slots_at
        pos = self._map.find(packed, at, self._entries_at)
        while pos >= 0:
            index, within = divmod(pos - at, size)
            if within == offset:
                slot = self.slots[index]
                if slot.used and match(slot):
                    return index
            pos = self._map.find(packed, pos + 1, self._entries_at)
        return None

    def doom(self, index: int, kind: str, text: str, relation) -> None:
        """A winner met this slot's transaction: it loses (``kind`` "schema": OC001, "data": OC000)."""
        with self.lock:
            slot = self.slots[index]
            slot.wounded = 1
            if kind == "schema":
                slot.schema_doomed = 1
                return
            slot.doomed = 1
            winners = _loads(slot)
            if len(winners) < 8:
                winners.append([text[:1000], list(relation) if relation else None])
                data = json.dumps(winners).encode()
                while len(data) > DOOMED_BY and winners:
                    winners.pop()
                    data = json.dumps(winners).encode()
                slot.doomed_by = data
                slot.doomed_by_len = len(data)

    def winners(self, index: int) -> list:
        """(statement, (schema, table)) of the winners' writes that met this slot's transaction."""
        return [(text, tuple(rel) if rel else None) for text, rel in _loads(self.slots[index])]

    def clear_doom(self, index: int) -> None:
        slot = self.slots[index]
        slot.doomed = 0
        slot.doomed_by_len = 0

    def wound(self, pid: int, kind: str) -> None:
        """Remember why backend ``pid`` is about to be ended (read back once by its session: take_wound)."""
        index = self.by_pid(pid)
        if index is not None:
            with self.lock:
                slot = self.slots[index]
                slot.wound_pid, slot.wound_kind = pid, KINDS[kind]

    def take_wound(self, index: int, pid: int) -> str | None:
        slot = self.slots[index]
        if slot.wound_pid != pid or not slot.wound_kind:
            return None
        with self.lock:
            kind = KIND_NAMES.get(slot.wound_kind)
            slot.wound_pid, slot.wound_kind = 0, 0
        return kind

    # -- committed transactions -------------------------------------------------------------------------------
    def reference(self, blockers) -> None:
        """An open transaction's pending write names these transactions (session id, transaction number)."""
        blockers = [b for b in blockers if b != "committed"]
        if not blockers:
            return
        with self.lock:
            for sid, txn in blockers:
                entry = self._entry(sid, txn)
                if entry is None:
                    entry = self._entry(0, 0)
                    if entry is None:
                        continue  # full: the re-applied write's own answer (MVCC) still decides
                    entry.session_id, entry.txn_number, entry.refs, entry.committed = sid, txn, 0, 0
                    self.header.referenced += 1
                entry.refs += 1

    def unreference(self, blockers) -> None:
        blockers = [b for b in blockers if b != "committed"]
        if not blockers:
            return
        with self.lock:
            for sid, txn in blockers:
                entry = self._entry(sid, txn)
                if entry is not None:
                    entry.refs -= 1
                    if entry.refs <= 0:
                        entry.session_id = entry.txn_number = entry.refs = entry.committed = 0
                        self.header.referenced -= 1

    def mark_committed(self, sid: int, txn: int, committed: bool = True) -> None:
        """The transaction committed (kept only while someone's pending write names it)."""
        if not self.header.referenced:
            return  # (the common case: no pending write anywhere names a transaction)
        with self.lock:
            entry = self._entry(sid, txn)
            if entry is not None:
                entry.committed = int(committed)

    def is_committed(self, blocker) -> bool:
        if blocker == "committed":
            return True
        entry = self._entry(*blocker)
        return entry is not None and bool(entry.committed)

    def _entry(self, sid: int, txn: int):
        """The committed table's entry for (session id, transaction number); (0, 0): a free one."""
        size, at = ctypes.sizeof(Entry), self._entries_at
        packed = struct.pack("=qq", sid, txn)
        pos = self._map.find(packed, at, self._end)
        while pos >= 0:
            index, within = divmod(pos - at, size)
            if within == 0:
                return self.committed[index]
            pos = self._map.find(packed, pos + 1, self._end)
        return None

    # -- connections ------------------------------------------------------------------------------------------
    def admit(self, limit: int | None) -> bool:
        with self.lock:
            if limit is not None and self.header.admitted >= limit:
                return False
            self.header.admitted += 1
            return True

    def leave(self) -> None:
        with self.lock:
            self.header.admitted -= 1

    def connections(self, worker: int, delta: int) -> None:
        if worker < WORKERS:
            with self.lock:
                self.header.connections[worker] += delta

    def by_cancel_key(self, key: int) -> int | None:
        return self._find_slot(Slot.cancel_key.offset, struct.pack("=i", key), lambda slot: slot.cancel_key == key)

    def reset(self) -> None:
        """PostgreSQL restarted: every session is gone (recover)."""
        with self.lock:
            for slot in self.slots:
                slot.used, slot.pid = 0, 0
            ctypes.memset(ctypes.addressof(self.committed), 0, ctypes.sizeof(self.committed))
            self.header.referenced = 0


def _size(slots: int) -> int:
    return ctypes.sizeof(Header) + ctypes.sizeof(Slot) * slots + ctypes.sizeof(Entry) * COMMITTED


def _loads(slot) -> list:
    if not slot.doomed_by_len:
        return []
    try:
        return json.loads(bytes(slot.doomed_by[:slot.doomed_by_len]))
    except ValueError:
        return []
