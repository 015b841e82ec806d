"""What any relay in front of PostgreSQL costs one client, before it does anything: pgbench select-only with 1
client against the embedded PostgreSQL directly (its Unix socket), and through, in the same rounds:

- a byte pump in C (poll on both sockets, read/write; compiled here with the system's cc, skipped without one);
- the least a Python relay can do: one loop per connection, blocking recv from the client, sendall to
  PostgreSQL, blocking recv of the answer up to ReadyForQuery, sendall to the client;
- a Python pump with a thread per direction;
- `serve` (one process), which relays such a read as PostgreSQL's own bytes (serve/relay.py) after the
  gate's cached answer and the engine's bookkeeping.

Every relay listens on loopback TCP, as serve does. The figures bound what a design can reach at 1 client
(issue 23's 1.5x): the ratio of the C pump is the floor of any relay over TCP, the minimal loop the floor of
one written in Python; serve's distance to the latter is its own per-statement work.

    python bench/serve_floor.py [--rounds 3] [--seconds 5]

Writes bench/results/serve_floor.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import RESULTS  # noqa: E402

C_PUMP = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(int argc, char **argv) {  /* argv: the port to listen on, the Unix socket to relay to */
  signal(SIGCHLD, SIG_IGN);
  int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {0}; a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[1]));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(ls, (void *)&a, sizeof a) || listen(ls, 128)) return 1;
  for (;;) {
    int c = accept(ls, 0, 0); if (c < 0) continue;
    if (fork()) { close(c); continue; }
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int u = socket(AF_UNIX, SOCK_STREAM, 0); struct sockaddr_un s = {0}; s.sun_family = AF_UNIX;
    strncpy(s.sun_path, argv[2], sizeof s.sun_path - 1);
    if (connect(u, (void *)&s, sizeof s)) _exit(1);
    struct pollfd p[2] = {{c, POLLIN, 0}, {u, POLLIN, 0}}; char buf[65536];
    for (;;) {
      if (poll(p, 2, -1) < 0) _exit(1);
      for (int i = 0; i < 2; i++) if (p[i].revents) {
        ssize_t n = read(p[i].fd, buf, sizeof buf); if (n <= 0) _exit(0);
        for (ssize_t o = 0; o < n;) { ssize_t w = write(p[1 - i].fd, buf + o, n - o); if (w <= 0) _exit(0); o += w; }
      }
    }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pump(src, dst) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _loop(client, upstream) -> None:
    """Request, then the answer up to ReadyForQuery ('Z', length 5, status: the last 6 bytes of a chunk)."""
    try:
        while data := client.recv(65536):
            upstream.sendall(data)
            while True:
                answer = upstream.recv(65536)
                if not answer:
                    return
                client.sendall(answer)
                if len(answer) >= 6 and answer[-6] == 90 and answer[-5:-1] == b"\0\0\0\5":
                    break
    except OSError:
        pass


def python_relay(unix_path: str, loop: bool) -> int:
    listener = socket.create_server(("127.0.0.1", 0))

    def accept():
        while True:
            client, _ = listener.accept()
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(unix_path)
            if loop:
                threading.Thread(target=_loop, args=(client, upstream), daemon=True).start()
            else:
                threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
                threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


def pgbench(pgbin: Path, dsn: str, protocol: str, seconds: int) -> float:
    out = subprocess.run([str(pgbin / "pgbench"), "-S", "-n", "-c", "1", "-j", "1", "-T", str(seconds), "-M",
                          protocol, dsn], capture_output=True, text=True)
    found = re.search(r"latency average = ([\d.]+) ms", out.stdout)
    if found is None:
        raise SystemExit(f"pgbench failed on {dsn}: {out.stderr.strip()[-300:]}")
    return float(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    from dsql_audit.engine import Engine
    from dsql_audit.resources import pgserver
    from dsql_audit.serve import Server

    pgbin = Path(pgserver().__file__).parent / "pginstall" / "bin"
    work = Path(tempfile.mkdtemp(prefix="dsql-audit-floor-"))
    c_pump = None
    with Engine(max_connections=100) as engine:
        host = engine.uri.split("host=", 1)[1]
        unix_path = f"{host}/.s.PGSQL.5432"
        direct = f"host={host} user=admin dbname=postgres"
        subprocess.run([str(pgbin / "pgbench"), "-i", "-q", "-s", "1", direct], check=True, capture_output=True)
        tcp = "host=127.0.0.1 port={} user=admin dbname=postgres sslmode=disable"
        sides = {"Python, minimal loop": tcp.format(python_relay(unix_path, loop=True)),
                 "Python, thread per direction": tcp.format(python_relay(unix_path, loop=False))}
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc:
            (work / "pump.c").write_text(C_PUMP)
            built = subprocess.run([cc, "-O2", "-o", str(work / "pump"), str(work / "pump.c")], capture_output=True)
            if built.returncode == 0:
                port = _free_port()
                c_pump = subprocess.Popen([str(work / "pump"), str(port), unix_path])
                time.sleep(0.3)
                sides = {"C pump": tcp.format(port), **sides}
        server = Server(engine, port=0, workers=1).start()
        sides["serve (one process)"] = server.dsn
        results: dict = {}
        try:
            for protocol in ("simple", "extended"):
                runs: dict = {"direct_ms": []}
                for r in range(args.rounds):
                    runs["direct_ms"].append(pgbench(pgbin, direct, protocol, args.seconds))
                    for name, dsn in sides.items():
                        runs.setdefault(name, []).append(pgbench(pgbin, dsn, protocol, args.seconds)
                                                         / runs["direct_ms"][-1])
                results[protocol] = {"direct_ms": round(statistics.median(runs["direct_ms"]), 4),
                                     **{name: round(statistics.median(v), 2) for name, v in runs.items()
                                        if name != "direct_ms"},
                                     "rounds": {k: [round(x, 3) for x in v] for k, v in runs.items()}}
                print(protocol, results[protocol], flush=True)
        finally:
            server.stop()
            if c_pump is not None:
                c_pump.kill()
            shutil.rmtree(work, ignore_errors=True)
    doc = {"seconds": args.seconds, "rounds": args.rounds, "cpus": os.cpu_count(), "results": results,
           "load_after": round(os.getloadavg()[0], 1)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve_floor.json").write_text(json.dumps(doc, indent=2) + "\n")
    names = [k for k in results["simple"] if k not in ("direct_ms", "rounds")]
    md = ["# What a relay costs one client: pgbench select-only, 1 client, latency ratio to direct", "",
          f"One run, {args.rounds} rounds of {args.seconds} s, {os.cpu_count()} cores; every relay on loopback TCP "
          "in front of the embedded PostgreSQL's Unix socket (`bench/serve_floor.py`). Median of the rounds.", "",
          "| protocol | direct latency ms | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for protocol, r in results.items():
        md.append(f"| {protocol} | {r['direct_ms']} | " + " | ".join(f"{r[n]}x" for n in names) + " |")
    (RESULTS / "serve_floor.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
