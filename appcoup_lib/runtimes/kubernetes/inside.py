"""``GET /data`` timed from inside the cluster: the coupling's own path, without the port-forward.

On Kubernetes the learner's ``app.url`` is a port-forward through the API server and the kubelet
to one pod, and timed from this machine that tunnel is most of every number. Here a short Python
loop runs in a container of the app (``kubectl exec``, as ``spread_inside`` does) and times the
requests where the coupling's users make them:

- where the unit serving ``/data`` has a Service (echo in `service`), from a container of another
  pod on the same cluster whose image has Python (the adapter), to the Service's name:
  ``http://echo.<namespace>.svc.cluster.local:8000/data`` (absolute: no search domain tried);
- where it has none (`pod`, `volume`, `single-image`, or no such container beside it), from the
  serving container itself to ``http://localhost:8000/data``.

The name is resolved once, before the first request (as a client with a connection pool would),
so the numbers are the requests, not the client's DNS lookups; each request is a new connection,
as :func:`appcoup_lib.loose.latencies` makes them from this machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import AppcoupError, NotReady
from ...scenarios import Unit

# A plain socket, not urllib: as little work per request as can be, in a container whose CPU limit
# it shares with the server there (echo's, or the adapter's). One HTTP/1.0 request per connection,
# which the server closes once it has answered. Prints "seconds bytes status" per request.
_TIMED = ("import socket, sys, time\n"
          "host, port, path, n, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), "
          "float(sys.argv[5])\n"
          # The absolute name (a final dot: no search domain is tried, so a Service not yet in the
          # cluster's DNS is not found elsewhere), asked again until the cluster's DNS knows it.
          "for _ in range(150):\n"
          "    try:\n"
          "        ip = socket.getaddrinfo(host if host == 'localhost' else host + '.', port, socket.AF_INET,"
          " socket.SOCK_STREAM)[0][4][0]\n"
          "        break\n"
          "    except OSError:\n"
          "        time.sleep(0.1)\n"
          "else:\n"
          "    print('error', 'cannot resolve', host, flush=True); sys.exit(3)\n"
          "req = f'GET {path} HTTP/1.0\\r\\nHost: {host}:{port}\\r\\n\\r\\n'.encode()\n"
          "time.sleep(0.2)  # the interpreter's start-up is not in the first request's time\n"
          "for _ in range(n):\n"
          "    t0 = time.perf_counter(); got = []\n"
          "    try:\n"
          "        with socket.create_connection((ip, port), timeout) as s:\n"
          "            s.sendall(req)\n"
          "            while b := s.recv(1 << 16):\n"
          "                got.append(b)\n"
          "    except OSError as e:\n"
          "        print('error', type(e).__name__, e, flush=True); sys.exit(3)\n"
          "    head, _, body = b''.join(got).partition(b'\\r\\n\\r\\n')\n"
          "    print(f'{time.perf_counter() - t0:.6f} {len(body)} {head[9:12].decode() or \"none\"}')\n")


@dataclass(frozen=True)
class Vantage:
    """Where the requests are sent from (a container of a pod), and to which URL."""

    container: str
    pod: str
    host: str
    port: int
    through: str  # what the URL reaches: "the Service echo", "echo itself, inside its pod"

    def url(self, path: str = "/data") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def where(self, path: str = "/data") -> str:
        return (f"inside the cluster: from container {self.container} of pod {self.pod} "
                f"to {self.url(path)} ({self.through})")


def vantage(app: Any, unit: Unit, service: dict[str, Any] | None, prober: str | None) -> Vantage:
    """Through ``service`` from ``prober`` (both on the unit's cluster), else the serving container's localhost."""
    entry = next(c for c in unit.containers if c.port)
    part = app.part(unit.name)
    if service is not None and prober is not None and app.part(app.scenario.unit_of(prober).name) is part:
        name = service["metadata"]["name"]
        fqdn = f"{name}.{part.namespace}.svc.cluster.local"  # as resolve() names it
        return Vantage(prober, app.pod_of(app.scenario.unit_of(prober).name), fqdn,
                       int(service["spec"]["ports"][0]["port"]), f"the Service {name}")
    return Vantage(entry.name, app.pod_of(unit.name), "localhost", entry.port or 8000,
                   f"{entry.name} itself, inside its pod")


def timed_gets(app: Any, at: Vantage, n: int, *, path: str = "/data", timeout: float = 5.0) -> dict[str, Any]:
    """Time ``n`` sequential ``GET path`` from ``at``: ``{"seconds", "bytes", "where"}``.

    A request that fails (refused, cut, or an answer other than 200) raises :class:`NotReady`, as
    the same request from this machine does.
    """
    part = app.part(app.scenario.unit_of(at.container).name)
    argv = ["python3", "-c", _TIMED, at.host, str(at.port), path, str(n), str(timeout)]
    code, out, err = part.conn.exec_in(at.pod, part.namespace, at.container, argv, timeout=60 + n * timeout / 10)
    seconds: list[float] = []
    sizes: list[int] = []
    for line in out.splitlines():
        words = line.split()
        if words[:1] == ["error"] or (len(words) == 3 and words[2] != "200"):
            raise NotReady(f"{at.url(path)} failed while timing it inside the cluster ({' '.join(words[1:])}).",
                           why=f"from container {at.container} of pod {at.pod}", fix="look at app.status()")
        if len(words) == 3:
            seconds.append(float(words[0]))
            sizes.append(int(words[1]))
    if code or len(seconds) != n:
        raise AppcoupError(f"Could not time GET {path} inside the cluster (exit code {code}).",
                           why=(err or out).strip()[-300:] or "the loop printed nothing",
                           fix=f"look at app.logs({at.container!r}) and app.status()")
    return {"seconds": seconds, "bytes": sizes, "where": at.where(path)}


__all__ = ["Vantage", "timed_gets", "vantage"]
