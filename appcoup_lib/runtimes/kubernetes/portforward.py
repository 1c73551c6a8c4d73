"""``kubectl port-forward``, made by the library: 127.0.0.1:<port> to a port of the app's current pod.

The pod is looked up again for every new connection, so the forward survives a container restart
(same pod) and a Deployment replacing its pod (a new name), without the learner doing anything.
Each connection is one port-forward websocket to the API server, opened on the connection's own
``ApiClient`` (see :mod:`.client`) and relayed by one thread of this module: at most
:data:`MAX_CONNECTIONS` at a time, the next ones wait in the listen queue.

The relay speaks the port-forward protocol itself (channel 0 the data, channel 1 the errors, each
opened by a frame carrying the port number) instead of the client's ``portforward()``, whose own
proxy thread raises where no one can catch it when the pod side vanishes mid-connection (a killed
echo). Here every failure ends in :meth:`PortForward._serve`: a closed connection, as with kubectl.

``kubectl port-forward`` keeps one connection to the API server and opens a stream on it per TCP
connection; this protocol has one websocket per TCP connection, and opening one (TCP, TLS, the API
server's proxying to the kubelet, the kubelet's dial of the pod's port) costs tens of milliseconds.
So a small pool (:data:`POOL`) of sessions is kept open and dialed ahead of the connections that
will use them: a new connection takes one and its first bytes go out at once, as through kubectl.
A pooled session whose dial failed, or whose pod side closed (a killed echo), is discarded when it
says so; after such failures the pool waits a little longer each time before dialing again
(:data:`RETRY`), so a program that stays down costs the cluster about one dial a second, not a
stream of them; the connections themselves still dial the pod each time, as kubectl does.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from ...errors import AppcoupError, PortInUse
from ..ports import UNKNOWN_HOLDER
from .client import Connection

MAX_CONNECTIONS = 32  # relayed at once; a browser or a poller opens a few, a runaway loop no more than this
POOL = 2  # sessions kept open (dialed) for the next connections: a poller or a browser needs one or two
POOL_MAX_AGE = 30.0  # seconds an unused session is kept; then a fresh one replaces it
RETRY = (0.05, 1.0)  # after a pooled session failed: the first wait before dialing again, and the longest
_DATA, _ERROR = 0, 1  # the port-forward channels of the first (only) port


class _Session:
    """One port-forward websocket to ``pod``: the cluster dialed the pod's port when it opened.

    What the pod side sent before a connection took it (its port headers, an error, a greeting of a
    protocol whose server speaks first) is read by :meth:`pump` and kept for the relay.
    """

    def __init__(self, ws: Any, pod: str) -> None:
        self.ws, self.pod = ws, pod
        self.opened = time.monotonic()
        self.header = {_DATA: 2, _ERROR: 2}  # each channel starts with the port number (2 bytes), not data
        self.data = b""  # from the pod, not yet given to the client
        self.error = b""  # the pod side's error message ("connection refused" ...)

    @property
    def sock(self) -> Any:
        return self.ws.sock.sock

    def buffered(self) -> bool:
        """Frames already decrypted sit in the TLS layer's buffer, invisible to select()."""
        return isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0

    def pump(self) -> bool:
        """Take in the frames that have arrived, without waiting; False once the session is over."""
        try:
            self.ws.update(timeout=0)
        except Exception as e:  # noqa: BLE001 - a reset or a broken frame: the session is over
            self.error = self.error or f"{type(e).__name__}: {e}".encode()
            return False
        for channel in (_DATA, _ERROR):
            data = self.ws.read_channel(channel)
            skip = min(self.header[channel], len(data))
            self.header[channel] -= skip
            if channel == _DATA:
                self.data += data[skip:]
            else:
                self.error += data[skip:]
        return self.ws.is_open() and not self.error

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001, S110 - already closed by the other side
            pass


class PortForward:
    """Listens on ``address:port`` (0: a free port) and forwards each connection to ``target_port``.

    Nothing runs until :meth:`start`; :meth:`close` stops accepting and ends the relays.
    """

    def __init__(self, conn: Connection, namespace: str, pod: Callable[[], str | None], target_port: int,
                 port: int = 0, address: str = "127.0.0.1") -> None:
        self.conn, self.namespace, self.pod, self.target_port = conn, namespace, pod, target_port
        self.address = address
        self.port = port
        self.error: str | None = None  # why the last connection could not be forwarded (for wait_ready's why)
        self._wanted = port
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._acceptor: threading.Thread | None = None
        self._idle: list[_Session] = []  # the pool: open, unused, oldest first
        self._kicks = [socket.socketpair() for _ in range(POOL)]  # each wakes one pool thread (a session was taken)
        for pair in self._kicks:
            for end in pair:
                end.setblocking(False)
        self._failures = 0  # pooled sessions that failed since a connection last got an answer
        self._poolers: list[threading.Thread] = []

    def start(self) -> PortForward:
        """Bind the port (:class:`PortInUse` when taken) and start accepting."""
        if self._server is not None:
            return self
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind((self.address, self._wanted))
        except OSError as e:
            server.close()
            raise PortInUse(self._wanted, UNKNOWN_HOLDER) from e
        server.listen(64)
        self._server = server
        self.port = server.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, name=f"appcoup port-forward :{self.port}", daemon=True)
        self._acceptor.start()
        # One thread per pooled session: each keeps one open, so a taken session is replaced at once.
        self._poolers = [threading.Thread(target=self._fill, args=(kick,), daemon=True,
                                          name=f"appcoup port-forward :{self.port} pool")
                         for kick, _ in self._kicks]
        for t in self._poolers:
            t.start()
        return self

    @property
    def running(self) -> bool:
        return self._server is not None and not self._stop.is_set()

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.5):
                continue  # all relays busy: the next connection waits in the listen queue
            try:
                client, _ = self._server.accept()
            except OSError:
                self._slots.release()
                return  # closed
            try:  # an answer in two writes (headers, body) must not wait for an ACK (kubectl's Go does the same)
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass  # the client has gone already: the relay finds out
            t = threading.Thread(target=self._serve, args=(client,), daemon=True,
                                 name=f"appcoup port-forward :{self.port} relay")
            with self._lock:
                self._threads.add(t)
            t.start()

    def _open(self, pod: str) -> _Session:
        ws = self.conn.stream("connect_get_namespaced_pod_portforward", pod, self.namespace,
                              ports=str(self.target_port), binary=True,
                              what=f"Cannot forward a connection to pod {pod}")
        return _Session(ws, pod)

    def _serve(self, client: socket.socket) -> None:
        session: _Session | None = None
        try:
            pod = self.pod()
            if not pod:
                return  # no running pod now: the connection closes, the caller sees "not answering"
            session = self._take(pod) or self._open(pod)
            self.error, answered = _relay(client, session, self._stop)
            if answered and self._failures:
                self._failures = 0  # the pod answers: the pool may dial again at once
                self._kick()
        except AppcoupError as e:  # the websocket could not be opened
            self.error = e.what + (f" ({e.why})" if e.why else "")
        except Exception as e:  # noqa: BLE001 - a socket or the websocket broke mid-connection: it closes, as with kubectl
            self.error = f"{type(e).__name__}: {e}"
        finally:
            client.close()
            if session is not None:
                session.close()
            with self._lock:
                self._threads.discard(threading.current_thread())
            self._slots.release()

    # -- the pool ----------------------------------------------------------------------------------
    def _take(self, pod: str) -> _Session | None:
        """A pooled session to ``pod`` that is still open (None: none, the caller opens one)."""
        found, dead = None, []
        with self._lock:
            while self._idle and found is None:
                s = self._idle.pop(0)
                if s.pod == pod and time.monotonic() - s.opened < POOL_MAX_AGE and s.pump():
                    found = s
                else:
                    dead.append(s)
        for s in dead:
            s.close()
        self._kick()
        return found

    def _kick(self) -> None:
        for _, w in self._kicks:
            try:
                w.send(b"x")
            except OSError:
                pass  # the pipe is full (the thread is awake anyway) or closed

    def _fill(self, kick: socket.socket) -> None:
        """One of the pool's threads: keep one session open to the current pod; once it is taken (or
        it failed, or the pod changed) open another."""
        mine: _Session | None = None
        retry_at, seen = 0.0, 0
        while not self._stop.is_set():
            try:
                pod = self.pod()
            except Exception:  # noqa: BLE001 - no answer about the pod now: nothing to dial
                pod = None
            now = time.monotonic()
            failures = self._failures
            if failures != seen:  # a new failure waits longer before the next dial; an answer, not at all
                retry_at = now + min(RETRY[1], RETRY[0] * 2 ** (failures - 1)) if failures else 0.0
                seen = failures
            stale = None
            with self._lock:
                if mine is not None and mine not in self._idle:
                    mine = None  # taken by a connection
                elif mine is not None and (mine.pod != pod or now - mine.opened > POOL_MAX_AGE):
                    self._idle.remove(mine)
                    stale, mine = mine, None
            if stale is not None:
                stale.close()
            if mine is None and pod and now >= retry_at:
                try:
                    session = self._open(pod)
                except AppcoupError as e:
                    self.error = e.what + (f" ({e.why})" if e.why else "")
                    self._failures += 1
                    continue
                with self._lock:
                    if self._stop.is_set():
                        session.close()
                        return
                    self._idle.append(session)
                mine = session
                continue
            timeout = min(0.5, retry_at - now) if mine is None and pod else 0.5
            if not self._watch(mine, kick, timeout):
                mine = None

    def _watch(self, session: _Session | None, kick: socket.socket, timeout: float) -> bool:
        """Wait ``timeout`` s for ``session`` to say something (a dial error, a close) or a kick;
        False when it failed (it is dropped)."""
        early = session is not None and session.buffered()
        watched = [kick] + ([session.sock] if session is not None else [])
        try:
            readable = select.select(watched, [], [], 0 if early else max(0.0, timeout))[0]
        except (OSError, ValueError):  # the session closed meanwhile (taken, or at close())
            return True
        if kick in readable:
            try:
                while kick.recv(512):
                    pass
            except OSError:
                pass  # drained
        if session is None or not (early or session.sock in readable):
            return True
        with self._lock:
            if session not in self._idle or session.pump():
                return True  # taken meanwhile (the connection reads it now), or only port headers
            self._idle.remove(session)
        self.error = session.error.decode("utf-8", "replace") or "the pod side closed the connection"
        self._failures += 1
        session.close()
        return False

    def close(self, timeout: float = 2.0) -> None:
        """Stop accepting, end the relays (each notices within half a second) and wait for them."""
        self._stop.set()
        if self._server is not None:
            try:
                self._server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # never connected: closing is enough
            self._server.close()
        self._kick()
        with self._lock:
            threads = list(self._threads)
            idle, self._idle = self._idle, []
        for s in idle:
            s.close()
        for t in [self._acceptor, *self._poolers, *threads]:
            if t is not None and t is not threading.current_thread():
                t.join(timeout)
        with self._lock:  # opened by a pool thread while it was ending
            idle, self._idle = self._idle, []
        for s in idle:
            s.close()
        for pair in self._kicks:
            for end in pair:
                end.close()


def _relay(client: socket.socket, session: _Session, stop: threading.Event) -> tuple[str | None, bool]:
    """Copy bytes both ways until the pod side closes: (the pod side's error message if it sent one,
    whether the pod sent anything)."""
    client_open = True
    answered = False
    while True:
        if session.data:
            answered = True
            client.sendall(session.data)
            session.data = b""
        if session.error:
            return session.error.decode("utf-8", "replace"), answered  # "connection refused" and friends
        if not session.ws.is_open() or stop.is_set():
            return None, answered
        buffered = session.buffered()
        watched = [session.sock] + ([client] if client_open else [])
        readable = select.select(watched, [], [], 0 if buffered else 0.5)[0]
        if client_open and client in readable:
            data = client.recv(65536)
            if data:
                session.ws.write_channel(_DATA, data)
            else:
                # EOF from the client: keep relaying the answer (half-closed, as an HTTP/1.0 client is).
                client_open = False
        if buffered or session.sock in readable:
            session.pump()


__all__ = ["MAX_CONNECTIONS", "POOL", "POOL_MAX_AGE", "RETRY", "PortForward"]
