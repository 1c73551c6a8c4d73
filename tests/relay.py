"""A unix-socket relay to the Docker engine, to make the engine "disappear" without touching dockerd.

``python tests/relay.py LISTEN_PATH [TARGET_PATH]`` listens on ``LISTEN_PATH`` and copies bytes
both ways to ``TARGET_PATH`` (default ``/var/run/docker.sock``). Point ``DOCKER_HOST`` at
``unix://LISTEN_PATH``: stopping the relay is, for appcoup, the engine going away (connection
refused / socket gone) while the real engine goes on serving everyone else; starting it again
is the engine coming back. Used as a subprocess by :class:`Relay`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

DEFAULT_TARGET = "/var/run/docker.sock"


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(listen: str, target: str) -> None:
    if os.path.exists(listen):
        os.unlink(listen)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(listen)
    server.listen(64)
    print("ready", flush=True)
    while True:
        client, _ = server.accept()
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(target)
        except OSError:
            client.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


class Relay:
    """The relay as a subprocess: ``start()``, ``stop()`` (the engine is gone), ``start()`` again."""

    def __init__(self, path: Path, target: str = DEFAULT_TARGET) -> None:
        self.path, self.target = Path(path), target
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def start(self) -> Relay:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, __file__, str(self.path), self.target],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"
        return self

    def stop(self) -> None:
        """Kill the relay and remove its socket: every open connection breaks, new ones are refused."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None
        deadline = time.monotonic() + 5
        while self.path.exists() and time.monotonic() < deadline:
            try:
                self.path.unlink()
            except FileNotFoundError:
                break

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else DEFAULT_TARGET)
