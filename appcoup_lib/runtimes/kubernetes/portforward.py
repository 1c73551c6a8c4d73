"""``kubectl port-forward``, made by the library: 127.0.0.1:<port> to a port of the app's current pod.

The pod is looked up again for every new connection, so the forward survives a container restart
(same pod) and a Deployment replacing its pod (a new name), without the learner doing anything.
Each connection is one port-forward websocket to the API server, opened on the connection's own
``ApiClient`` (see :mod:`.client`).
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable
from typing import Any

from ...errors import PortInUse
from .client import Connection


def _quiet_proxy_threads() -> None:
    """The client's forward thread raises when the pod side vanishes mid-connection (a killed echo):
    for the learner that is a closed connection, not a traceback in the notebook."""
    previous = threading.excepthook
    if getattr(previous, "_appcoup", False):
        return

    def hook(args: Any) -> None:
        if args.thread is not None and args.thread.name.startswith("Kubernetes port forward proxy"):
            return
        previous(args)

    hook._appcoup = True  # type: ignore[attr-defined]
    threading.excepthook = hook


class PortForward:
    """Listens on ``127.0.0.1:port`` (0: a free port) and forwards each connection to ``target_port``."""

    def __init__(self, conn: Connection, namespace: str, pod: Callable[[], str | None], target_port: int,
                 port: int = 0, address: str = "127.0.0.1") -> None:
        self.conn, self.namespace, self.pod, self.target_port = conn, namespace, pod, target_port
        _quiet_proxy_threads()
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._server.bind((address, port))
        except OSError as e:
            self._server.close()
            raise PortInUse(port, "another program (run `ss -ltnp` to see which)") from e
        self._server.listen(64)
        self.address = address
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"appcoup port-forward :{self.port}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        pf: Any = None
        try:
            pod = self.pod()
            if not pod:
                return  # no running pod now: the connection closes, the caller sees "not answering"
            pf = self.conn.stream("connect_get_namespaced_pod_portforward", pod, self.namespace,
                                  ports=str(self.target_port))
            remote = pf.socket(self.target_port)
            remote.setblocking(True)
            _pump(client, remote, self._stop)
        except Exception:  # noqa: BLE001, S110 - a failed forward is a closed connection, as with kubectl
            pass
        finally:
            client.close()
            if pf is not None:
                try:
                    pf.close()
                except Exception:  # noqa: BLE001, S110
                    pass

    def close(self) -> None:
        self._stop.set()
        try:
            self._server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._server.close()


def _pump(a: socket.socket, b: Any, stop: threading.Event) -> None:
    """Copy bytes both ways until the pod side closes."""
    open_ = {a: b, b: a}
    while open_ and not stop.is_set():
        readable, _, _ = select.select(list(open_), [], [], 0.5)
        for s in readable:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if data:
                try:
                    open_[s].sendall(data)
                except OSError:
                    return
                continue
            # EOF. From the pod: the answer is complete. From the client: keep relaying the answer (the
            # client-go helper would drop it if its local end closed, so that end stays open).
            open_.pop(s)
            if s is b:
                return
