"""echo: serve the numbers the generator writes, over HTTP.

File mode (default): ``GET /data`` returns the file ``data`` of the working directory (and
nothing else of it: no listing, no other file, no symlink leading out).
Remote mode (``SOURCE_URL`` set): fetch the numbers from that URL (the adapter, found by a
name) on every request and serve them at ``/data`` the same way.

``PORT`` (default 8000) picks the port. SIGTERM stops the server at once: as PID 1 in a
container a process gets no default signal handlers, so we install one.
"""

from __future__ import annotations

import http.client
import http.server
import os
import signal
import socket
import sys
import threading

PORT = int(os.environ.get("PORT", "8000"))
# The local runtime binds 127.0.0.1 (this machine only); in a container, every interface of the
# container ("" ), which only the published port (127.0.0.1 by default) makes reachable.
BIND_ADDRESS = os.environ.get("BIND_ADDRESS", "")
SOURCE_URL = os.environ.get("SOURCE_URL", "")
# Which copy answered: behind a Service (or the course's front) requests spread over replicas.
REPLICA = os.environ.get("APPCOUP_CONTAINER") or socket.gethostname()
if SOURCE_URL:  # only remote mode needs an HTTP client: file mode starts faster without one
    import urllib.error
    import urllib.request


def _read_data() -> bytes | None:
    """The file ``data`` of the working directory, if it is a regular file that stays inside it.

    A symlink named ``data`` pointing elsewhere (``/etc/passwd``) is not served.
    """
    here = os.path.realpath(os.getcwd())
    target = os.path.realpath(os.path.join(here, "data"))
    if os.path.dirname(target) != here or not os.path.isfile(target):
        return None
    try:
        with open(target, "rb") as f:
            return f.read()
    except OSError:
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    """``/data`` and ``/healthz``, nothing else: no listing, no other file, no way out of the directory."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._send(200, b"ok\n")
        elif path != "/data":
            self._send(404, b"echo serves /data (and /healthz) only\n")
        elif SOURCE_URL:
            try:
                with urllib.request.urlopen(SOURCE_URL, timeout=2) as r:
                    body = r.read()
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
                self._send(502, f"cannot reach {SOURCE_URL}: {e}\n".encode())
            else:
                self._send(200, body)
        else:
            body = _read_data()
            if body is None:
                self._send(404, b"no data yet\n")
            else:
                self._send(200, body)

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def end_headers(self) -> None:
        self.send_header("X-Served-By", REPLICA)
        super().end_headers()

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        if os.environ.get("ECHO_QUIET") != "1":
            super().log_message(format, *args)


def main() -> None:
    try:
        server = http.server.ThreadingHTTPServer((BIND_ADDRESS, PORT), Handler)
    except OSError as e:  # the port was taken after it was chosen: say so, plainly
        print(f"echo: cannot listen on port {PORT}: {e.strerror or e}", file=sys.stderr, flush=True)
        sys.exit(2)
    server.daemon_threads = True

    def stop(signum: int, _frame: object) -> None:
        # shutdown() blocks until serve_forever returns, so call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    mode = f"remote mode, numbers from {SOURCE_URL}" if SOURCE_URL else f"serving {os.getcwd()}"
    print(f"echo: listening on port {PORT}, {mode}", flush=True)
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    print("echo: stopped", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
