"""Host ports: is one free, who holds it, a free one. Shared by every runtime that publishes one."""

from __future__ import annotations

import socket
from collections.abc import Callable

from ..errors import AppcoupError, PortInUse

UNKNOWN_HOLDER = "another program (run `ss -ltnp` to see which)"


def bind_free(port: int, address: str = "127.0.0.1") -> int | None:
    """Bind ``port`` (0: any) on ``address`` for a moment: the port it got, or None when taken.

    As http.server does, connections in TIME_WAIT do not count as "in use" (SO_REUSEADDR).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            return None
        return int(s.getsockname()[1])


def process_holder(port: int, describe: Callable[[dict[str, str]], str] | None = None) -> str:
    """Who listens on ``port``: a process by pid and command line.

    ``describe(environ)`` may add to it from the holder's environment (an appcoup app names itself
    there, with the command that stops it).
    """
    try:
        import psutil

        conns = psutil.net_connections(kind="inet")
    except Exception:  # noqa: BLE001 - psutil missing or denied: the port is taken all the same
        return UNKNOWN_HOLDER
    for c in conns:
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid:
            try:
                proc = psutil.Process(c.pid)
                cmd = " ".join(proc.cmdline()) or proc.name()
                env = proc.environ() if describe else {}
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                return f"process {c.pid}"
            return f"process {c.pid} ({cmd[:80]})" + (describe(env) if describe else "")
    return UNKNOWN_HOLDER


def check_free(port: int, address: str, holder: Callable[[int], str]) -> int:
    """``port`` itself if free (else :class:`PortInUse` naming ``holder(port)``); any free port if 0."""
    got = bind_free(port, address)
    if got is None:
        raise PortInUse(port, holder(port))
    return got


def free_port(is_free: Callable[[int], bool] = lambda port: True, *, address: str = "") -> int:
    """A port the system hands out as free that ``is_free`` agrees on (an engine's containers ...)."""
    for _ in range(20):
        port = bind_free(0, address)
        if port is not None and is_free(port):
            return port
    raise AppcoupError("Found no free port to publish /data on.", fix="pass a port yourself: up(..., port=8001)")


__all__ = ["UNKNOWN_HOLDER", "bind_free", "check_free", "free_port", "process_holder"]
