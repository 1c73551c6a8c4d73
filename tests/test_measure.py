"""Measuring honestly: a connection cut mid-response is "not answering", a recovery is timed only
once the outage is seen to begin, and one poller serves watch, recovery and the lessons."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import appcoup_lib as ac
from appcoup_lib.measure import Poller, recovery, watch
from appcoup_lib.runtimes.base import App
from appcoup_lib.scenarios import scenario


class _AppAt(App):
    """Only the URL of an app: enough to exercise the shared ``fetch`` against a real server.
    (The programs cannot be made to cut a response half-way on cue; these servers do.)"""

    def __init__(self, url: str) -> None:
        super().__init__(None, scenario("pod"), "bare", interval=1)  # type: ignore[arg-type]
        self._url = url

    url = property(lambda self: self._url)  # type: ignore[assignment]
    status = processes = events = logs = _kill = _teardown = lambda self, *a: None  # type: ignore[assignment]


def _server(answer: Callable[[socket.socket], None]) -> tuple[str, Callable[[], None]]:
    """A real TCP server that answers every connection with ``answer`` (then closes it)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    stop = threading.Event()

    def loop() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                answer(conn)

    threading.Thread(target=loop, daemon=True).start()

    def close() -> None:
        stop.set()
        srv.close()

    return f"http://127.0.0.1:{srv.getsockname()[1]}", close


CUTS: dict[str, Callable[[socket.socket], Any]] = {
    "IncompleteRead": lambda c: c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n1\n2\n"),
    "BadStatusLine": lambda c: c.sendall(b"garbage, not HTTP\r\n\r\n"),
    "RemoteDisconnected": lambda c: None,
    "ConnectionReset": lambda c: c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"),
    "HTTP 500": lambda c: c.sendall(b"HTTP/1.0 500 Oops\r\nContent-Length: 0\r\n\r\n"),
}


@pytest.mark.parametrize("cut", list(CUTS))
def test_a_response_cut_half_way_is_not_answering(cut: str) -> None:
    url, close = _server(CUTS[cut])
    try:
        app = _AppAt(url)
        with pytest.raises(ac.NotReady):
            app.fetch("/data")
        assert app.answers() is False
        assert Poller(app).sample().answered is False
        from appcoup_lib.loose import spread
        from appcoup_lib.runtimes.scaling import answers

        assert answers(url + "/data") is False  # the scale verbs' check of each copy
        assert spread(app, requests=2).failed == 2
    finally:
        close()


@pytest.mark.local
def test_recovery_refuses_to_time_an_outage_that_never_began(local) -> None:
    """Killing the generator of `separate` leaves /data answering and nothing restarts: there is no
    recovery to time (the old code reported ~0.01 s here)."""
    with local.up("separate", interval=0.2, port=0) as app:
        app.wait_ready()
        with pytest.raises(ac.NotReady, match="did not interrupt"):
            recovery(app, "generator", timeout=2)


@pytest.mark.local
def test_recovery_times_a_real_outage(local) -> None:
    with local.up("pod", interval=0.2, port=0) as app:
        app.wait_ready()
        took = recovery(app, "echo", timeout=20)
        assert took is not None and 0.01 < took < 20
        assert app.status()["echo"]["restarts"] == 1


@pytest.mark.local
def test_one_poller_in_the_background_and_in_watch(local) -> None:
    with local.up("separate", interval=0.2, port=0) as app:
        app.wait_ready()
        quiet = watch(app, 0.5, every=0.05)
        assert quiet.gaps() == [] and len(quiet) >= 5
        with Poller(app, every=0.05) as poll:
            time.sleep(0.2)
            poll.mark("kill echo")
            app.kill("echo")  # `separate` has no restart policy: it stays down
            time.sleep(0.6)
        tl = poll.timeline()
        assert poll.failures >= 5 and 0.4 < poll.dark < 2
        assert tl.marks and tl.marks[0][1] == "kill echo" and not tl.answered_at_end
