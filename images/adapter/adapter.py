"""adapter: expose the generator's data file over HTTP, so a Service can carry it.

A Service routes network traffic; it cannot share a file. The adapter runs beside the generator
(same pod, same volume) and serves ``GET /data`` from the file, plus ``/healthz`` (the process
answers) and ``/readyz`` (the data file exists). ``PORT`` defaults to 8080, ``DATA_FILE`` to
``data`` in the working directory.
"""

from __future__ import annotations

import http.server
import os
import signal
import sys
import threading

PORT = int(os.environ.get("PORT", "8080"))
# The local runtime binds 127.0.0.1 (this machine only); in a container, every interface of the
# container ("" ), which only the published port (127.0.0.1 by default) makes reachable.
BIND_ADDRESS = os.environ.get("BIND_ADDRESS", "")
DATA_FILE = os.environ.get("DATA_FILE", "data")


def _read_data() -> bytes | None:
    """``DATA_FILE`` when it is a regular file inside the working directory (a symlink out is refused)."""
    here = os.path.realpath(os.getcwd())
    target = os.path.realpath(os.path.join(here, DATA_FILE))
    if not (target.startswith(here + os.sep)) or not os.path.isfile(target):
        return None
    try:
        with open(target, "rb") as f:
            return f.read()
    except OSError:
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?")[0]
        if path == "/healthz":
            self._send(200, b"ok\n")
        elif path == "/readyz":
            ready = os.path.exists(DATA_FILE)
            self._send(200 if ready else 503, b"ready\n" if ready else b"no data file yet\n")
        elif path == "/data":
            body = _read_data()
            if body is None:
                self._send(404, b"no data file yet\n")
            else:
                self._send(200, body)
        else:
            self._send(404, b"try /data, /healthz or /readyz\n")

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

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
        print(f"adapter: cannot listen on port {PORT}: {e.strerror or e}", file=sys.stderr, flush=True)
        sys.exit(2)
    server.daemon_threads = True

    def stop(signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"adapter: serving {DATA_FILE} on port {PORT}", flush=True)
    server.serve_forever(poll_interval=0.1)
    server.server_close()


if __name__ == "__main__":
    main()
