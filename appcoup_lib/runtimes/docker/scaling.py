"""Loose coupling on Docker: copies of a unit on one network alias, a front container, rollouts.

- Copies share a network alias. Every copy of unit ``echo`` joins the app's network with the
  alias ``echo``, and Docker's embedded DNS answers ``echo`` with the address of every copy:
  that is Docker's own round-robin discovery, the real thing.
- The learner's port needs one stable place to land: a *front* container (``images/front``)
  publishes a new host port and, for each request, asks Docker's DNS who ``echo`` is now and
  forwards to the next one. A copy leaves the rotation by leaving the network (its DNS record
  goes), which is how a rolling update drains it before removing it.
- A copy ``k`` of a multi-container unit gets its own pause container (its own network
  namespace, like a pod), its own scratch volumes, and shares the persistent ones.

These are the hooks of :class:`~appcoup_lib.runtimes.scaling.Scaling`, which runs them inside
:func:`~.engine.errors` (``_boundary``): an engine failure while scaling is an AppcoupError too.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ... import images
from ...errors import AppcoupError
from ...labels import APP_LABEL
from ...scenarios import Container, Unit
from ..base import Table
from ..scaling import Scaling
from . import objects
from .engine import errors, find, flavour, in_parallel, missing
from .objects import recreate_kwargs, remove_volume

FRONT = "front"


class DockerScaling(Scaling):
    """The Docker runtime's hooks for :class:`~appcoup_lib.runtimes.scaling.Scaling`.

    Abstract: :class:`~.app.DockerApp` completes it.
    """

    client: Any  # the engine's docker.DockerClient
    _port: int  # the learner's host port (the front's, once there is one)
    _built_tags: list[str]  # images a rollout built, removed with the app

    def _boundary(self, what: str) -> AbstractContextManager[None]:
        return errors(what)

    # -- names and lookups -----------------------------------------------------------------------
    def _net_name(self) -> str:
        return f"{self.name}-net"

    def _copy_ctr(self, c: Container, k: int) -> str:
        return objects.container_name(self.name, c.name if k == 1 else f"{c.name}-{k}")

    def _copy_pause(self, unit: Unit, k: int) -> str:
        return objects.pause_name(self.name, unit.name) if k == 1 else f"{self.name}-{unit.name}-{k}-pause"

    def _holder(self, unit: Unit, k: int) -> str:
        """The container owning copy ``k``'s network namespace."""
        return self._copy_pause(unit, k) if len(unit.containers) > 1 else self._copy_ctr(unit.containers[0], k)

    def _get(self, name: str) -> Any:
        return self.client.containers.get(name)

    def _network(self) -> Any:
        """The app's user-defined network (created the first time when the scenario had none)."""
        net = find(self.client.networks, self._net_name())
        if net is None:
            net = self.client.networks.create(self._net_name(), driver="bridge",
                                              labels=objects.labels(self.name, self.scenario.name))
        return net

    def _aliases(self, unit: Unit) -> list[str]:
        return [s.name for s in self.scenario.services if s.unit == unit.name] + [unit.name]

    def _copies(self, unit: Unit) -> int:
        ctrs = self.client.containers.list(all=True, filters={"label": [f"{APP_LABEL}={self.name}",
                                                                        f"appcoup.unit={unit.name}"]})
        return max([int(c.labels.get("appcoup.copy", "1")) for c in ctrs] or [1])

    def _front_port(self) -> int:
        """The front's host port, 0 when there is no front (an engine failure is raised, not taken for "none")."""
        front = find(self.client.containers, f"{self.name}-{FRONT}")
        return int(front.labels.get("appcoup.port", "0")) if front is not None else 0

    def _has_front(self, unit: Unit) -> bool:
        return self._front_port() > 0

    # -- the pool: who the front sends requests to ----------------------------------------------
    def _join_front(self, unit: Unit, copy: int) -> None:
        net = self._network()
        ctr = self._get(self._holder(unit, copy))
        current = ((ctr.attrs.get("NetworkSettings") or {}).get("Networks") or {}).get(net.name)
        if current is not None and unit.name in (current.get("Aliases") or []):
            return
        if current is not None:
            net.disconnect(ctr)
        net.connect(ctr, aliases=self._aliases(unit))

    def _leave_front(self, unit: Unit, copy: int) -> None:
        import docker.errors

        try:
            self._network().disconnect(self._get(self._holder(unit, copy)))
        except docker.errors.APIError as e:
            # Not connected (403 "is not connected") or gone (404): already out. Anything else is a failure.
            if not (missing(e) or "not connected" in str(getattr(e, "explanation", "") or e)):
                raise

    def _copy_answers(self, unit: Unit, k: int) -> bool:
        """The readiness probe, run inside the copy (its port is not published)."""
        import docker.errors

        entry = next(c for c in unit.containers if c.port is not None)
        probe = (f"import urllib.request; urllib.request.urlopen("
                 f"'http://127.0.0.1:{entry.port}{entry.probe or '/data'}', timeout=1)")
        ctr = self._get(self._copy_ctr(entry, k))
        try:
            return ctr.exec_run(["python3", "-c", probe]).exit_code == 0
        except docker.errors.APIError as e:
            if missing(e):
                raise  # the copy is gone: it will never answer
            return False  # not started yet (409: not running)

    # -- copies ----------------------------------------------------------------------------------
    def _run_like(self, attrs: dict[str, Any], *, name: str, image: str | None = None,
                  labels: dict[str, str] | None = None, env: dict[str, str] | None = None,
                  ports: bool = True, network_mode: str | None = None, network: str | None = None,
                  aliases: list[str] | None = None, volumes: dict[str, str] | None = None) -> Any:
        """``docker run`` a container like the one ``attrs`` describes, with the changes given."""
        from docker.types import EndpointConfig

        kw = recreate_kwargs(attrs)
        kw["name"] = name
        kw["labels"] = {**kw["labels"], **(labels or {})}
        if env:
            kept = [e for e in kw["environment"] if e.split("=", 1)[0] not in env]
            kw["environment"] = kept + [f"{k}={v}" for k, v in env.items()]
        if not ports:
            kw.pop("ports", None)
        if network_mode:
            kw.pop("network", None)
            kw["network_mode"] = network_mode
        elif network:
            kw.pop("network_mode", None)
            kw["network"] = network
            kw["networking_config"] = {network: EndpointConfig(self.client.api._version, aliases=aliases or [])}
        if volumes and kw.get("volumes"):
            kw["volumes"] = [":".join([volumes.get(b.split(":", 1)[0], b.split(":", 1)[0]), b.split(":", 1)[1]])
                             for b in kw["volumes"]]
        return self.client.containers.run(image or attrs["Config"]["Image"], **kw)

    def _add_copies(self, unit: Unit, copies: list[int], versions: dict[str, str] | None) -> None:
        in_parallel([lambda k=k: self._add_copy(unit, k, versions) for k in copies])  # round trips overlap

    def _add_copy(self, unit: Unit, k: int, versions: dict[str, str] | None) -> None:
        net = self._network().name
        vols: dict[str, str] = {}
        for c in unit.containers:
            if c.volume and self.scenario.volumes.get(c.volume) == "scratch":
                # A copy's own scratch volume; persistent volumes and host directories are shared.
                vname = f"{self.name}-{c.volume}-{k}"
                self.client.volumes.create(vname, labels=objects.labels(self.name, self.scenario.name))
                vols[f"{self.name}-{c.volume}"] = vname
        copy_label = {"appcoup.copy": str(k)}
        if len(unit.containers) > 1:
            # On the network, but under no alias yet: the front learns of it once it answers.
            pause = self._run_like(self._get(self._copy_pause(unit, 1)).attrs, name=self._copy_pause(unit, k),
                                   labels=copy_label, ports=False, network=net, aliases=[])
            for c in unit.containers:
                self._run_like(self._get(self._copy_ctr(c, 1)).attrs, name=self._copy_ctr(c, k),
                               image=(versions or {}).get(c.name), network_mode=f"container:{pause.id}",
                               labels={**copy_label, "appcoup.container": f"{c.name}-{k}"},
                               env={"APPCOUP_CONTAINER": f"{c.name}-{k}"}, volumes=vols)
        else:
            c = unit.containers[0]
            self._run_like(self._get(self._copy_ctr(c, 1)).attrs, name=self._copy_ctr(c, k),
                           image=(versions or {}).get(c.name), ports=False, network=net,
                           aliases=[], volumes=vols,
                           labels={**copy_label, "appcoup.container": f"{c.name}-{k}"},
                           env={"APPCOUP_CONTAINER": f"{c.name}-{k}"})

    def _remove_copies(self, unit: Unit, copies: list[int]) -> None:
        in_parallel([lambda k=k: self._remove_copy(unit, k) for k in copies])

    def _remove_copy(self, unit: Unit, k: int) -> None:
        import docker.errors

        for name in [*(self._copy_ctr(c, k) for c in unit.containers),
                     *([self._copy_pause(unit, k)] if len(unit.containers) > 1 else [])]:
            try:
                self._get(name).remove(force=True, v=True)
            except docker.errors.NotFound:
                pass  # gone already
        for c in unit.containers:
            if c.volume and self.scenario.volumes.get(c.volume) == "scratch":
                remove_volume(self.client, f"{self.name}-{c.volume}-{k}")

    def _ensure_front(self, unit: Unit) -> None:
        if self._has_front(unit):
            return
        entry = next(c for c in unit.containers if c.port is not None)
        port = objects.free_port(self.client)
        # Published on the same host address as the app's own port (127.0.0.1 unless asked otherwise).
        binds = ((self._get(self._holder(unit, 1)).attrs.get("NetworkSettings") or {}).get("Ports") or {})
        host_ip = next((b.get("HostIp") for v in binds.values() for b in (v or []) if b.get("HostIp")), "127.0.0.1")
        host_ip = "127.0.0.1" if host_ip in ("", "::") else host_ip
        tag = images.ensure([FRONT])[FRONT]
        self.client.containers.run(
            tag, name=f"{self.name}-{FRONT}", detach=True, network=self._network().name,
            ports={"8000/tcp": (host_ip, port)}, restart_policy={"Name": "always"},
            environment={"BACKEND_NAME": unit.name, "BACKEND_PORT": str(entry.port), "PORT": "8000"},
            labels=objects.labels(self.name, self.scenario.name, **{"appcoup.container": FRONT, "appcoup.port": str(port)}))
        self._port = port

    # -- rollout ---------------------------------------------------------------------------------
    def _prepare(self, containers: list[Container], context: Path) -> dict[str, str]:
        """Build the images that the change touches (only those); the new tag per container."""
        built = images.build_changed({c.image for c in containers}, context=context, progress=False)
        # Removed with the app, so the next rollout measures a real build again.
        self._built_tags += [b.tag for b in built.values() if b.built]
        return {c.name: built[c.image].tag for c in containers if c.image in built}

    def _replace(self, unit: Unit, copy: int, versions: dict[str, str]) -> None:
        net = self._network().name
        for c in unit.containers:
            if c.name not in versions:
                continue
            ctr = self._get(self._copy_ctr(c, copy))
            attrs = ctr.attrs
            ctr.remove(force=True)
            mode = (attrs.get("HostConfig") or {}).get("NetworkMode") or ""
            if mode.startswith("container:"):
                self._run_like(attrs, name=ctr.name, image=versions[c.name])
            else:
                # Back on the app's network under its aliases (the front finds it by them).
                on = ((attrs.get("NetworkSettings") or {}).get("Networks") or {})
                if net in on or mode == net:
                    # Under no alias until it answers (then _join_front): no request meets it half-started.
                    self._run_like(attrs, name=ctr.name, image=versions[c.name], network=net, aliases=[])
                else:
                    self._run_like(attrs, name=ctr.name, image=versions[c.name])
        self._wait_copies(unit, [copy])

    def identities(self) -> dict[str, tuple[Any, int]]:
        out = {}
        for ctr in self.client.containers.list(all=True, filters={"label": f"{APP_LABEL}={self.name}"}):
            name = ctr.labels.get("appcoup.container")
            if any(c.name == name for c in self.scenario.containers):
                out[name] = (ctr.id, int(ctr.attrs.get("RestartCount", 0)))
        return out

    # -- recreate --------------------------------------------------------------------------------
    def _recreate(self, units: list[Unit]) -> None:
        saved = []
        for u in units:  # delete everything first: for a moment, none of them exists
            members = [(c, self._get(self._copy_ctr(c, 1))) for c in u.containers]
            pause = self._get(self._copy_pause(u, 1)) if len(u.containers) > 1 else None
            saved.append((u, pause.attrs if pause else None, [(c, m.attrs) for c, m in members]))
            for _, m in members:
                m.remove(force=True)
            if pause:
                pause.remove(force=True)
        for vol in self._scratch_of(units):
            vname = f"{self.name}-{vol}"
            remove_volume(self.client, vname)
            self.client.volumes.create(vname, labels=objects.labels(self.name, self.scenario.name))
        for _u, pause_attrs, members in saved:
            mode = None
            if pause_attrs:
                pause = self._run_like(pause_attrs, name=pause_attrs["Name"].lstrip("/"),
                                       **self._net_kw(pause_attrs))
                mode = f"container:{pause.id}"
            for _c, attrs in members:
                if mode:
                    self._run_like(attrs, name=attrs["Name"].lstrip("/"), network_mode=mode)
                else:
                    self._run_like(attrs, name=attrs["Name"].lstrip("/"), **self._net_kw(attrs))

    def _net_kw(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The network and aliases a container had on the app's network (Docker forgets aliases)."""
        net = self._net_name()
        on = ((attrs.get("NetworkSettings") or {}).get("Networks") or {})
        if net not in on:
            return {}
        return {"network": net, "aliases": [a for a in (on[net].get("Aliases") or []) if a != attrs["Id"][:12]]}

    # -- data and volumes ------------------------------------------------------------------------
    @errors("Cannot append to the generator's data file")
    def append_data(self, nbytes: int, line: bytes = b"12345\n") -> None:
        """Append ``nbytes`` of numbers to the generator's data file, from inside its container."""
        n = max(1, nbytes // len(line)) * len(line)
        text = line.decode().strip()
        gen = next(c.name for c in self.scenario.containers if "generator" in c.runs)
        res = self._get(objects.container_name(self.name, gen)).exec_run(
            ["sh", "-c", f"yes {text} | head -c {n} >> data"])
        if res.exit_code:
            raise AppcoupError("Could not append to the generator's data file.",
                               why=res.output.decode(errors="replace")[-300:], fix="look at app.status()")

    @errors("Cannot read the app's volumes")
    def volumes(self) -> Table:
        """Which container mounts which volume: Docker's own words (``docker inspect`` Mounts)."""
        rows = []
        for c in self.scenario.containers:
            for m in self._get(objects.container_name(self.name, c.name)).attrs.get("Mounts") or []:
                rows.append({"container": c.name, "volume": m.get("Name") or m.get("Source"),
                             "kind": self.scenario.volumes.get(c.volume or "", "?"),
                             "type": m.get("Type"), "mounted at (in the container)": m.get("Destination")})
        return Table(rows)

    @errors("Cannot ask Docker's DNS")
    def resolve(self, name: str, *, container: str = "echo") -> dict[str, Any]:
        """Ask Docker's DNS, from inside ``container``, who ``name`` is."""
        script = ("import socket,sys; n=sys.argv[1]; print(' '.join(sorted(socket.gethostbyname_ex(n)[2]))); "
                  "print([l.split()[1] for l in open('/etc/resolv.conf') if l.startswith('nameserver')][0])")
        res = self._get(objects.container_name(self.name, container)).exec_run(["python3", "-c", script, name])
        out = res.output.decode(errors="replace").split("\n")
        if res.exit_code:
            raise AppcoupError(f"{name!r} does not resolve inside {container!r}.", why=" ".join(out)[-300:],
                               fix="look at app.status(): is the unit serving it running?")
        return {"name": name, "addresses": out[0].split(), "resolver": f"{flavour(self.client).dns} ({out[1]})"}


__all__ = ["FRONT", "DockerScaling"]
