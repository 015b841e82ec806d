"""Denial-of-service attacks on `dsql-audit serve` (issue 20), each against a fresh `serve` subprocess with its
peak RSS sampled (psutil, every 20 ms; serve is killed when it passes --kill-at, default 4 GB).

    python bench/serve_dos.py [--out results/serve_dos.json] [attack ...]

Attacks: big-message (one 100 MB simple query), big-result (1,000,000 rows of 1,000 bytes, simple and
extended protocol), hangups (245 clients send `SELECT pg_sleep(75)` and hang up; how long until the next
client runs SELECT 1), max-connections (30 clients against --max-connections 20), kill-9 (does the embedded
PostgreSQL outlive a SIGKILLed serve, and does a restart find the data).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


class Serve:
    def __init__(self, *args: str, kill_at: int, data_dir: str | None = None):
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="serve-dos-")
        self.log = open(Path(self.data_dir).parent / (Path(self.data_dir).name + ".log"), "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "dsql_audit", "serve", "--port", "0", "-q",
                                      "--data-dir", self.data_dir, *args], stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, cwd=ROOT)
        line = self.proc.stdout.readline()
        m = re.search(r"(postgresql://\S+)", line)
        if not m:
            raise SystemExit(f"serve did not start: {line}")
        self.dsn = m.group(1)
        self.port = int(re.search(r":(\d+)/", self.dsn).group(1))
        self.ps = psutil.Process(self.proc.pid)
        self.base = self.peak = self.ps.memory_info().rss
        self.killed = False
        self.kill_at = kill_at
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self.ps.memory_info().rss
            except psutil.Error:
                return
            self.peak = max(self.peak, rss)
            if rss > self.kill_at and not self.killed:
                self.killed = True
                self.proc.kill()
            time.sleep(0.02)

    def postmaster_pid(self) -> int | None:
        try:
            return int(Path(self.data_dir, "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def close(self) -> dict:
        self._stop.set()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        stop_postmaster(self.postmaster_pid())
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        return {"serve_rss_base_mb": self.base >> 20, "serve_rss_peak_mb": self.peak >> 20,
                "serve_killed_over_limit": self.killed}


def stop_postmaster(pid: int | None) -> None:
    """The embedded PostgreSQL a killed serve left behind (ours: we started that serve)."""
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGINT)
    except OSError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def raw_client(port: int, timeout: float = 30) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    body = struct.pack("!i", 196608) + b"user\0admin\0database\0postgres\0\0"
    s.sendall(struct.pack("!i", len(body) + 4) + body)
    got = b""
    while not got.endswith(b"Z\0\0\0\x05I"):
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed during startup: {got[-200:]!r}")
        got += chunk
    return s


def read_messages(s: socket.socket, until: bytes = b"Z"):
    """Yield (kind, body) until a message of kind ``until`` (included) or EOF."""
    buf = bytearray()
    while True:
        while len(buf) >= 5:
            (n,) = struct.unpack_from("!i", buf, 1)
            if len(buf) < n + 1:
                break
            kind, body = bytes(buf[:1]), bytes(buf[5:n + 1])
            del buf[:n + 1]
            yield kind, body
            if kind == until:
                return
        chunk = s.recv(1 << 20)
        if not chunk:
            return
        buf += chunk


def error_text(body: bytes) -> str:
    fields = dict((f[:1].decode(), f[1:].decode(errors="replace")) for f in body.split(b"\0") if f)
    return f"{fields.get('S', '')} {fields.get('C', '')} {fields.get('M', '')}"


def attack_big_message(kill_at: int) -> dict:
    srv = Serve(kill_at=kill_at)
    out = {}
    try:
        s = raw_client(srv.port, timeout=120)
        size = 100 * 1024 * 1024
        body_start = b"SELECT length('"
        started = time.monotonic()
        s.sendall(b"Q" + struct.pack("!i", size + 4) + body_start)
        answer = {}

        def reader():
            try:
                for kind, body in read_messages(s):
                    if kind == b"E":
                        answer.setdefault("error", error_text(body))
                        answer.setdefault("seconds", round(time.monotonic() - started, 2))
                    elif kind == b"D":
                        answer["row"] = True
                answer["closed"] = True
            except OSError as exc:
                answer["closed"] = f"{exc.__class__.__name__}"

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        sent, tail = len(body_start), b"')\0"
        chunk = b"x" * (1 << 20)
        try:
            while sent < size - len(tail):
                part = chunk[:min(len(chunk), size - len(tail) - sent)]
                s.sendall(part)
                sent += len(part)
            s.sendall(tail)
        except OSError as exc:
            out["send"] = f"stopped after {sent >> 20} MB: {exc.__class__.__name__}"
        t.join(120)
        out.update(answer)
        out["total_seconds"] = round(time.monotonic() - started, 2)
        s.close()
    finally:
        out.update(srv.close())
    return out


def _drain_rows(s: socket.socket) -> tuple[int, str | None]:
    rows, err = 0, None
    for kind, body in read_messages(s):
        if kind == b"D":
            rows += 1
        elif kind == b"E":
            err = error_text(body)
    return rows, err


BIG = "SELECT repeat('x', 1000) FROM generate_series(1, 1000000)"


def attack_big_result(kill_at: int) -> dict:
    out = {}
    for mode in ("simple", "extended"):
        srv = Serve(kill_at=kill_at)
        try:
            s = raw_client(srv.port, timeout=300)
            started = time.monotonic()
            if mode == "simple":
                s.sendall(msg(b"Q", BIG.encode() + b"\0"))
            else:
                s.sendall(msg(b"P", b"\0" + BIG.encode() + b"\0\0\0") + msg(b"B", b"\0\0\0\0\0\0\0\0")
                          + msg(b"D", b"P\0") + msg(b"E", b"\0\0\0\0\0") + msg(b"S", b""))
            try:
                rows, err = _drain_rows(s)
            except OSError as exc:
                rows, err = -1, exc.__class__.__name__
            out[mode] = {"rows": rows, "error": err, "seconds": round(time.monotonic() - started, 2)}
            s.close()
        finally:
            out[mode].update(srv.close())
    return out


def attack_hangups(kill_at: int, clients: int = 245) -> dict:
    srv = Serve(kill_at=kill_at)
    out = {}
    try:
        socks, refused = [], []
        for _ in range(clients):
            try:
                socks.append(raw_client(srv.port))
            except (OSError, ConnectionError) as exc:
                refused.append(str(exc)[-120:])
        for s in socks:
            s.sendall(msg(b"Q", b"SELECT pg_sleep(75)\0"))
        time.sleep(0.3)
        hung_up = time.monotonic()
        for s in socks:
            s.close()
        out["connected"], out["refused"] = len(socks), len(refused)
        out["refused_sample"] = refused[:1]
        import psycopg

        last = None
        while time.monotonic() - hung_up < 100:
            try:
                with psycopg.connect(srv.dsn, connect_timeout=10, autocommit=True) as c:
                    c.execute("SELECT 1")
                out["next_client_ok_after_s"] = round(time.monotonic() - hung_up, 2)
                break
            except psycopg.Error as exc:
                last = str(exc).strip().splitlines()[0][:160]
                time.sleep(0.5)
        else:
            out["next_client_ok_after_s"] = None
        out["next_client_first_error"] = last
    finally:
        out.update(srv.close())
    return out


def attack_max_connections(kill_at: int) -> dict:
    import psycopg

    srv = Serve("--max-connections", "20", kill_at=kill_at)
    out = {}
    try:
        conns, errors = [], []
        for _ in range(30):
            try:
                conns.append(psycopg.connect(srv.dsn, connect_timeout=10))
            except psycopg.Error as exc:
                errors.append(f"{getattr(exc, 'sqlstate', None)} {str(exc).strip().splitlines()[-1][:120]}")
        out["accepted"], out["refused"] = len(conns), len(errors)
        out["refusal"] = errors[:1]
        for c in conns:
            c.close()
    finally:
        out.update(srv.close())
    return out


def attack_kill9(kill_at: int) -> dict:
    import psycopg

    data_dir = tempfile.mkdtemp(prefix="serve-dos-k9-")
    srv = Serve(kill_at=kill_at, data_dir=data_dir)
    out = {}
    try:
        with psycopg.connect(srv.dsn, autocommit=True) as c:
            c.execute("CREATE TABLE k9 (id int PRIMARY KEY)")
            c.execute("INSERT INTO k9 VALUES (1)")
        pid = srv.postmaster_pid()
        srv.proc.kill()
        srv.proc.wait()
        killed = time.monotonic()
        gone = None
        while time.monotonic() - killed < 15:
            if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                gone = round(time.monotonic() - killed, 2)
                break
            time.sleep(0.05)
        out["postmaster_gone_after_s"] = gone
        if gone is None:
            stop_postmaster(pid)
        again = Serve(kill_at=kill_at, data_dir=data_dir)
        try:
            with psycopg.connect(again.dsn, autocommit=True) as c:
                out["row_after_restart"] = c.execute("SELECT count(*) FROM k9").fetchone()[0]
        finally:
            again.close()
    finally:
        srv.close()
    return out


ATTACKS = {"big-message": attack_big_message, "big-result": attack_big_result, "hangups": attack_hangups,
           "max-connections": attack_max_connections, "kill-9": attack_kill9}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("attacks", nargs="*", default=list(ATTACKS))
    ap.add_argument("--kill-at", type=int, default=4 << 30, help="bytes of serve RSS at which it is killed")
    ap.add_argument("--out", help="write the results here (json)")
    args = ap.parse_args()
    results = {}
    for name in args.attacks:
        started = time.monotonic()
        results[name] = ATTACKS[name](args.kill_at)
        results[name]["attack_seconds"] = round(time.monotonic() - started, 1)
        print(name, json.dumps(results[name]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
