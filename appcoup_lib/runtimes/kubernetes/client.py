"""The connection to a cluster: one cached ``ApiClient`` per (kubeconfig, context), errors at the boundary.

Requests return plain JSON (``_preload_content=False``): the course reads a few fields, and
skipping the client's model classes keeps every round trip cheap on a small machine.
Every failure of a request, a watch, an exec or a port-forward's websocket becomes an
:class:`~appcoup_lib.errors.AppcoupError` here (:func:`call`, :func:`watch`, :meth:`Connection.stream`).
Exec and port-forward get ``ApiClient`` objects of their own: the client's ``stream()`` swaps the
request method of the client it is given, which breaks a watch sharing it ("Handshake status 200"),
and two websockets opening on one client at once. Each opening borrows a free one (made when none
is free), so websockets open side by side: a port-forward's pool and a kill do not queue.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ...errors import AppcoupError, RuntimeUnavailable

FIX_SDK = "pip install 'appcoup[kubernetes]'  (the Kubernetes client for Python)"
FIX_CLUSTER = ("start a cluster (`kind create cluster`, `minikube start`, `k3d cluster create`, Docker Desktop's "
               "Kubernetes) or point KUBECONFIG at one; `kubectl cluster-info` must answer")
REQUEST_TIMEOUT = (5, 30)  # (connect, read) seconds: a cluster that is gone answers within seconds


def sdk() -> Any:
    """The ``kubernetes`` package, or :class:`RuntimeUnavailable` naming the extra to install."""
    try:
        import kubernetes
    except ImportError:
        raise RuntimeUnavailable("The Kubernetes client for Python is not installed.", fix=FIX_SDK) from None
    return kubernetes


def kubeconfig_path(explicit: str | None = None) -> str | None:
    """The kubeconfig to read: ``explicit``, ``$KUBECONFIG`` or ``~/.kube/config`` (None: none here)."""
    if explicit:
        return os.path.expanduser(explicit)
    env = os.environ.get("KUBECONFIG")
    if env:
        return env
    default = os.path.expanduser("~/.kube/config")
    return default if os.path.exists(default) else None


@dataclass
class Connection:
    """One cluster, as a kubeconfig context names it."""

    kubeconfig: str | None  # None: in-cluster (a pod's service account)
    context: str
    server: str
    configuration: Any
    api: Any  # ApiClient for requests and watches
    _stream_lock: threading.Lock = field(default_factory=threading.Lock)
    _stream_apis: list[Any] = field(default_factory=list)  # free ApiClients for stream(), one per opening
    _stream_made: list[Any] = field(default_factory=list)  # every one made (closed by close())

    @property
    def label(self) -> str:
        return f"context {self.context!r} ({self.server})"

    def core(self) -> Any:
        return sdk().client.CoreV1Api(self.api)

    def apps(self) -> Any:
        return sdk().client.AppsV1Api(self.api)

    def discovery(self) -> Any:
        return sdk().client.DiscoveryV1Api(self.api)

    def stream(self, method_name: str, *args: Any, what: str, **kwargs: Any) -> Any:
        """Open an exec or port-forward websocket (``connect_get_namespaced_pod_*``) on its own client.

        Returns the client's ``WSClient`` (``_preload_content=False``: no thread of the client's own);
        a failure to open it is an :class:`AppcoupError` saying ``what`` failed.
        """
        k8s = sdk()
        from kubernetes.stream import stream

        with self._stream_lock:  # stream() swaps a method of its client while it connects: one opening each
            api = self._stream_apis.pop() if self._stream_apis else None
        if api is None:
            api = k8s.client.ApiClient(self.configuration)
            with self._stream_lock:
                self._stream_made.append(api)
        try:
            return stream(getattr(k8s.client.CoreV1Api(api), method_name), *args, _preload_content=False, **kwargs)
        except Exception as e:
            raise api_error(what, e, self) from e
        finally:
            with self._stream_lock:
                self._stream_apis.append(api)

    def exec_in(self, pod: str, namespace: str, container: str, argv: list[str],
                timeout: float = 20) -> tuple[int, str, str]:
        """``kubectl exec``: (exit code, stdout, stderr) of ``argv`` in ``container``; -1 when it was killed."""
        what = f"Cannot run {argv[0]!r} in container {container!r} of pod {pod}"
        ws = self.stream("connect_get_namespaced_pod_exec", pod, namespace, container=container, command=argv,
                         stderr=True, stdin=False, stdout=True, tty=False, what=what)
        try:
            ws.run_forever(timeout=timeout)
            out, err = ws.read_channel(1), ws.read_channel(2)
            try:
                code = ws.returncode
            except Exception:  # noqa: BLE001 - no readable status
                code = -1  # the stream ended without a status: the process was killed (a kill of its shell)
        except Exception as e:  # the websocket broke mid-stream: the one boundary names it
            raise api_error(what, e, self) from e
        finally:
            ws.close()
        return (code if code is not None else -1), out, err

    def close(self) -> None:
        for c in (self.api, *self._stream_made):
            try:
                if c is not None:
                    c.close()
            except Exception:  # noqa: BLE001, S110 - closing at exit is best effort
                pass


_CONNECTIONS: dict[tuple[str | None, str | None], Connection] = {}
_LOCK = threading.Lock()


def contexts(kubeconfig: str | None = None) -> tuple[list[str], str | None]:
    """The context names of a kubeconfig and its current one."""
    k8s = sdk()
    path = kubeconfig_path(kubeconfig)
    if path is None:
        return [], None
    try:
        ctxs, active = k8s.config.list_kube_config_contexts(config_file=path)
    except Exception as e:  # noqa: BLE001 - a broken or missing file
        raise RuntimeUnavailable(f"The kubeconfig {path} cannot be read: {e}", fix=FIX_CLUSTER) from None
    return [c["name"] for c in ctxs or []], (active or {}).get("name")


def connect(context: str | None = None, kubeconfig: str | None = None, *, retries: int | bool = 2) -> Connection:
    """The cached connection to ``context`` of ``kubeconfig`` (default: the current one, or in-cluster)."""
    key = (kubeconfig_path(kubeconfig), context)
    with _LOCK:
        if key in _CONNECTIONS and retries == 2:
            return _CONNECTIONS[key]
        conn = _new_connection(key[0], context, retries)
        if retries == 2:
            _CONNECTIONS[key] = conn
        return conn


def _new_connection(path: str | None, context: str | None, retries: int | bool) -> Connection:
    k8s = sdk()
    cfg = k8s.client.Configuration()
    if path is None:
        if not os.environ.get("KUBERNETES_SERVICE_HOST"):
            raise RuntimeUnavailable("No Kubernetes cluster is configured here (no KUBECONFIG, no ~/.kube/config).",
                                     fix=FIX_CLUSTER)
        k8s.config.load_incluster_config(client_configuration=cfg)
        name = "in-cluster"
    else:
        names, active = contexts(path)
        name = context or active or ""
        if context and context not in names:
            raise RuntimeUnavailable(f"There is no context {context!r} in {path}.",
                                     fix=f"use one of: {', '.join(names) or '(none)'} (kubectl config get-contexts)")
        if not name:
            raise RuntimeUnavailable(f"The kubeconfig {path} names no current context.",
                                     fix="kubectl config use-context NAME")
        try:
            k8s.config.load_kube_config(config_file=path, context=name, client_configuration=cfg,
                                        persist_config=False)
        except Exception as e:  # noqa: BLE001 - ConfigException and friends
            raise RuntimeUnavailable(f"The context {name!r} of {path} cannot be used: {e}", fix=FIX_CLUSTER) from None
    cfg.retries = retries
    api = k8s.client.ApiClient(cfg)
    return Connection(path, name, cfg.host, cfg, api)


def close_all() -> None:
    with _LOCK:
        for conn in _CONNECTIONS.values():
            conn.close()
        _CONNECTIONS.clear()


atexit.register(close_all)


# -- requests ------------------------------------------------------------------------------------
def call(fn: Callable[..., Any], *args: Any, what: str, timeout: Any = REQUEST_TIMEOUT, missing_ok: bool = False,
         raw: bool = False, **kwargs: Any) -> Any:
    """Call a generated API method and return its JSON body as dicts; errors become AppcoupErrors.

    With ``missing_ok``, a 404 returns None; with ``raw``, the body's bytes (a pod's log).
    """
    try:
        resp = fn(*args, _preload_content=False, _request_timeout=timeout, **kwargs)
        data = resp.data
    except Exception as e:
        if missing_ok and status_of(e) == 404:
            return None
        raise api_error(what, e) from e
    if raw:
        return data or b""
    return json.loads(data) if data else {}


def status_of(e: BaseException) -> int:
    """The HTTP status of an ApiException (0 when the request never got an answer)."""
    return int(getattr(e, "status", 0) or 0)


def api_error(what: str, e: BaseException, conn: Connection | None = None) -> AppcoupError:
    """What failed, the cluster's own words, and what to do."""
    status = status_of(e)
    where = f" ({conn.label})" if conn else ""
    if status == 0 and not hasattr(e, "body"):
        return RuntimeUnavailable(f"{what}: the cluster does not answer{where}.", why=_short(e),
                                  fix="check that the cluster runs: `kubectl cluster-info`; then try again "
                                      "(`appcoup clean` removes what is left)")
    message = _message(e)
    if status == 403:
        return AppcoupError(f"{what}: the cluster refused it (RBAC){where}.", why=message,
                            fix="ask the cluster's admin for that permission (the verb and resource are named above), "
                                "or use a context that has it")
    if status == 401:
        return AppcoupError(f"{what}: the cluster does not accept these credentials{where}.", why=message,
                            fix="renew your login (kubectl must answer `kubectl auth whoami`)")
    return AppcoupError(f"{what}{where}.", why=f"Kubernetes said ({status}): {message}",
                        fix="look at `kubectl get all -n NAMESPACE`; `appcoup clean` removes what is left")


def _message(e: BaseException) -> str:
    body = getattr(e, "body", None)
    try:
        return json.loads(body).get("message") or str(body)
    except (TypeError, ValueError, AttributeError):
        return str(body or getattr(e, "reason", "") or e)


def _short(e: BaseException) -> str:
    text = str(getattr(e, "reason", "") or e)
    return text if len(text) < 300 else text[:300] + "..."


# -- watches -------------------------------------------------------------------------------------
def watch(fn: Callable[..., Any], *args: Any, resource_version: str, what: str, timeout_seconds: int = 60,
          stop: threading.Event | None = None, opened: Callable[[Any], None] | None = None,
          **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Raw watch events (``{"type", "object"}``) from ``resource_version`` until the server ends the watch.

    The caller re-lists on :class:`Gone` (410: the version is too old) and re-watches on a normal end;
    any other failure is an :class:`AppcoupError` saying ``what`` failed. ``opened(response)`` gets the
    response as soon as it is open, so its owner can close it to end the watch at once.
    """
    from kubernetes.watch.watch import iter_resp_lines

    try:
        resp = fn(*args, watch=True, resource_version=resource_version, timeout_seconds=timeout_seconds,
                  allow_watch_bookmarks=True, _preload_content=False,
                  _request_timeout=(5, timeout_seconds + 10), **kwargs)
    except Exception as e:
        raise api_error(what, e) from e
    if opened is not None:
        opened(resp)
    try:
        for line in iter_resp_lines(resp):
            if stop is not None and stop.is_set():
                return
            if not line:
                continue
            ev = json.loads(line)
            if ev.get("type") == "ERROR":
                if (ev.get("object") or {}).get("code") == 410:
                    raise Gone()
                continue
            yield ev
    except (Gone, GeneratorExit):
        raise
    except Exception as e:
        if stop is not None and stop.is_set():
            return  # closed by its owner: the end it asked for
        raise api_error(what, e) from e
    finally:
        resp.close()
        resp.release_conn()


class Gone(Exception):
    """A watch's resourceVersion is too old (410): list again."""


__all__ = ["FIX_CLUSTER", "FIX_SDK", "REQUEST_TIMEOUT", "Connection", "Gone", "api_error", "call", "close_all",
           "connect", "contexts", "kubeconfig_path", "sdk", "status_of", "watch"]
