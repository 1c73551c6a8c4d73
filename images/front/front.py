"""front: what a Service is, in 80 lines: one stable address spreading requests over replicas.

The local and docker runtimes put it in front of a unit once that unit runs more than one copy
(``app.scale``). It forwards every GET, round-robin, to the replicas it knows:

- ``BACKENDS_FILE``: a file of ``host:port`` lines, re-read whenever it changes (local runtime);
- ``BACKEND_NAME`` + ``BACKEND_PORT``: a DNS name resolved again every 0.2 s (docker:
  Docker's DNS answers a network alias with the address of every container carrying it).

A replica that refuses a connection is skipped for a second and the request goes to the next one,
as nginx's ``proxy_next_upstream`` does: during a rolling update nobody sees the replica that is
going away. ``PORT`` (default 8000) and ``BIND_ADDRESS`` (default all addresses) say where it listens.
"""

from __future__ import annotations

import http.client
import http.server
import itertools
import os
import signal
import socket
import threading
import time

PORT = int(os.environ.get("PORT", "8000"))
BIND_ADDRESS = os.environ.get("BIND_ADDRESS", "")
BACKENDS_FILE = os.environ.get("BACKENDS_FILE", "")
BACKEND_NAME = os.environ.get("BACKEND_NAME", "")
BACKEND_PORT = int(os.environ.get("BACKEND_PORT", "8000"))

_lock = threading.Lock()
_cache: dict[str, object] = {"key": None, "list": []}
_down: dict[str, float] = {}  # backend -> until when it is skipped
_turn = itertools.count()


def backends() -> list[str]:
    """The replicas now, as ``host:port`` (sorted, so round-robin visits each in turn)."""
    with _lock:
        if BACKENDS_FILE:
            try:
                key = os.stat(BACKENDS_FILE).st_mtime_ns
            except OSError:
                return []
            if key != _cache["key"]:
                with open(BACKENDS_FILE) as f:
                    _cache["list"] = sorted(line.strip() for line in f if line.strip())
                _cache["key"] = key
        return list(_cache["list"])  # type: ignore[arg-type]


def _resolve_forever() -> None:
    """Ask DNS again every 0.2 s, off the request path: a slow answer never delays a request,
    and a failed lookup keeps the last list instead of emptying it."""
    while True:
        try:
            addrs = socket.gethostbyname_ex(BACKEND_NAME)[2]
        except OSError:
            addrs = None
        if addrs:
            with _lock:
                _cache["list"] = sorted(f"{a}:{BACKEND_PORT}" for a in addrs)
        time.sleep(0.2)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        pool = backends()
        now = time.monotonic()
        up = [b for b in pool if _down.get(b, 0) < now]
        start = next(_turn)
        # The copies that answered lately first, round-robin; then the others, as a last resort.
        order = [up[(start + i) % len(up)] for i in range(len(up))] + [b for b in pool if b not in up]
        why: list[str] = []
        for backend in order:
            host, port = backend.rsplit(":", 1)
            # Short timeouts: a copy that just left the network drops packets instead of refusing
            # them (even mid-answer), and a GET can safely go to the next copy instead.
            conn = http.client.HTTPConnection(host, int(port), timeout=0.5)
            try:
                conn.connect()
                conn.sock.settimeout(1.0)
                conn.request("GET", self.path)
                r = conn.getresponse()
                body = r.read()
            except OSError as e:
                _down[backend] = time.monotonic() + 1.0
                why.append(f"{backend}: {e}")
                continue
            finally:
                conn.close()
            self.send_response(r.status)
            for h in ("Content-Type", "X-Served-By"):
                if r.getheader(h):
                    self.send_header(h, r.getheader(h))
            self.send_header("X-Backend", backend)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        msg = f"front: no replica answers (known: {', '.join(pool) or 'none'}; tried: {'; '.join(why)})\n".encode()
        self.send_response(503)
        self.send_header("Content-Length", str(len(msg)))
        self.end_headers()
        self.wfile.write(msg)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    if BACKEND_NAME:
        threading.Thread(target=_resolve_forever, daemon=True).start()
    server = http.server.ThreadingHTTPServer((BIND_ADDRESS, PORT), Handler)
    server.daemon_threads = True

    def stop(signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    where = BACKENDS_FILE or f"{BACKEND_NAME}:{BACKEND_PORT} (DNS)"
    print(f"front: listening on port {PORT}, replicas from {where}", flush=True)
    server.serve_forever(poll_interval=0.1)
    server.server_close()


if __name__ == "__main__":
    main()
