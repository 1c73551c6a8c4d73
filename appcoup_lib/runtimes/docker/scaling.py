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
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import AppcoupError
from ..scenarios import Container, Unit
from .base import Table
from .scaling import DRAIN, Scaling

FRONT = "front"


class DockerScaling(Scaling):
    """The Docker runtime's hooks for :class:`~appcoup_lib.runtimes.scaling.Scaling`."""

    client: Any
    name: str
    _port: int

    # -- names and lookups -----------------------------------------------------------------------
    def _net_name(self) -> str:
        return f"{self.name}-net"

    def _copy_ctr(self, c: Container, k: int) -> str:
        return self.container_name(c.name if k == 1 else f"{c.name}-{k}")  # type: ignore[attr-defined]

    def _copy_pause(self, unit: Unit, k: int) -> str:
        return self.pause_name(unit.name) if k == 1 else f"{self.name}-{unit.name}-{k}-pause"  # type: ignore[attr-defined]

    def _holder(self, unit: Unit, k: int) -> str:
        """The container owning copy ``k``'s network namespace."""
        return self._copy_pause(unit, k) if len(unit.containers) > 1 else self._copy_ctr(unit.containers[0], k)

    def _get(self, name: str) -> Any:
        return self.client.containers.get(name)

    def _network(self) -> Any:
        """The app's user-defined network (created the first time when the scenario had none)."""
        import docker.errors

        from .docker import _labels

        try:
            return self.client.networks.get(self._net_name())
        except docker.errors.NotFound:
            return self.client.networks.create(self._net_name(), driver="bridge",
                                               labels=_labels(self.name, self.scenario.name))  # type: ignore[attr-defined]

    def _aliases(self, unit: Unit) -> list[str]:
        return [s.name for s in self.scenario.services if s.unit == unit.name] + [unit.name]  # type: ignore[attr-defined]

    def _copies(self, unit: Unit) -> int:
        from .docker import APP_LABEL

        ctrs = self.client.containers.list(all=True, filters={"label": [f"{APP_LABEL}={self.name}",
                                                                        f"appcoup.unit={unit.name}"]})
        return max([int(c.labels.get("appcoup.copy", "1")) for c in ctrs] or [1])

    def _front_port(self) -> int:
        """The front's host port, 0 when there is no front."""
        try:
            return int(self._get(f"{self.name}-{FRONT}").labels.get("appcoup.port", "0"))
        except Exception:  # noqa: BLE001 - no front (or no engine): the caller falls back
            return 0

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
        except docker.errors.APIError:
            pass  # not connected: already out

    def _wait_copy(self, unit: Unit, k: int, timeout: float = 60) -> None:
        """The readiness probe, run inside the copy (its port is not published)."""
        entry = next(c for c in unit.containers if c.port is not None)
        ctr = self._get(self._copy_ctr(entry, k))
        probe = (f"import urllib.request; urllib.request.urlopen("
                 f"'http://127.0.0.1:{entry.port}{entry.probe or '/data'}', timeout=1)")

        def ready() -> bool:
            try:
                return ctr.exec_run(["python3", "-c", probe]).exit_code == 0
            except Exception:  # noqa: BLE001 - not started yet
                return False
        self.wait_until(ready, timeout, f"copy {k} of {unit.name} to answer")  # type: ignore[attr-defined]

    # -- copies ----------------------------------------------------------------------------------
    def _run_like(self, attrs: dict[str, Any], *, name: str, image: str | None = None,
                  labels: dict[str, str] | None = None, env: dict[str, str] | None = None,
                  ports: bool = True, network_mode: str | None = None, network: str | None = None,
                  aliases: list[str] | None = None, volumes: dict[str, str] | None = None) -> Any:
        """``docker run`` a container like the one ``attrs`` describes, with the changes given."""
        from docker.types import EndpointConfig

        from .docker import _recreate_kwargs

        kw = _recreate_kwargs(attrs)
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

    def _new_copy(self, unit: Unit, k: int, versions: dict[str, str] | None) -> None:
        from .docker import _labels

        net = self._network().name
        vols: dict[str, str] = {}
        for c in unit.containers:
            if c.volume and self.scenario.volumes.get(c.volume) == "scratch":  # type: ignore[attr-defined]
                # A copy's own scratch volume; persistent volumes and host directories are shared.
                vname = f"{self.name}-{c.volume}-{k}"
                self.client.volumes.create(vname, labels=_labels(self.name, self.scenario.name))  # type: ignore[attr-defined]
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

    def _drop_copy(self, unit: Unit, k: int) -> None:
        import docker.errors

        for name in [*(self._copy_ctr(c, k) for c in unit.containers),
                     *([self._copy_pause(unit, k)] if len(unit.containers) > 1 else [])]:
            try:
                self._get(name).remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
        for c in unit.containers:
            if c.volume and self.scenario.volumes.get(c.volume) == "scratch":  # type: ignore[attr-defined]
                self._remove_volume(f"{self.name}-{c.volume}-{k}")

    def _remove_volume(self, vname: str) -> None:
        import docker.errors

        for _ in range(20):  # a just-removed container may hold it for a moment
            try:
                self.client.volumes.get(vname).remove(force=True)
                return
            except docker.errors.NotFound:
                return
            except docker.errors.APIError:
                time.sleep(0.1)

    def _ensure_front(self, unit: Unit) -> None:
        from .. import images
        from .docker import _free_port, _labels

        if self._has_front(unit):
            return
        entry = next(c for c in unit.containers if c.port is not None)
        port = _free_port(self.client)
        # Published on the same host address as the app's own port (127.0.0.1 unless asked otherwise).
        binds = ((self._get(self._holder(unit, 1)).attrs.get("NetworkSettings") or {}).get("Ports") or {})
        host_ip = next((b.get("HostIp") for v in binds.values() for b in (v or []) if b.get("HostIp")), "127.0.0.1")
        host_ip = "127.0.0.1" if host_ip in ("", "::") else host_ip
        tag = images.ensure([FRONT])[FRONT]
        self.client.containers.run(
            tag, name=f"{self.name}-{FRONT}", detach=True, network=self._network().name,
            ports={"8000/tcp": (host_ip, port)}, restart_policy={"Name": "always"},
            environment={"BACKEND_NAME": unit.name, "BACKEND_PORT": str(entry.port), "PORT": "8000"},
            labels=_labels(self.name, self.scenario.name,  # type: ignore[attr-defined]
                           **{"appcoup.container": FRONT, "appcoup.port": str(port)}))
        self._port = port

    def _scale(self, unit: Unit, replicas: int, versions: dict[str, str] | None = None) -> None:
        from .docker import _in_parallel

        current = self._copies(unit)
        self._join_front(unit, 1)
        new = list(range(current + 1, replicas + 1))
        if new:
            _in_parallel([lambda k=k: self._new_copy(unit, k, versions) for k in new])
            _in_parallel([lambda k=k: self._wait_copy(unit, k) for k in new])
            for k in new:
                self._join_front(unit, k)
        self._ensure_front(unit)
        gone = list(range(replicas + 1, current + 1))
        if gone:
            for k in gone:
                self._leave_front(unit, k)
            time.sleep(DRAIN)
            _in_parallel([lambda k=k: self._drop_copy(unit, k) for k in gone])

    # -- rollout ---------------------------------------------------------------------------------
    def _prepare(self, containers: list[Container], context: Path) -> dict[str, str]:
        """Build the images that the change touches (only those); the new tag per container."""
        from .. import images

        changed = sorted({c.image for c in containers if images.tag_for(c.image, context=context)
                          != images.tag_for(c.image)})
        built = images.build(changed, context=context, progress=False) if changed else {}
        # Removed with the app, so the next rollout measures a real build again.
        self._built_tags = [*getattr(self, "_built_tags", []), *(b.tag for b in built.values() if b.built)]
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
        self._wait_copy(unit, copy)

    def _identities(self) -> dict[str, tuple[Any, int]]:
        from .docker import APP_LABEL

        out = {}
        for ctr in self.client.containers.list(all=True, filters={"label": f"{APP_LABEL}={self.name}"}):
            name = ctr.labels.get("appcoup.container")
            if any(c.name == name for c in self.scenario.containers):  # type: ignore[attr-defined]
                out[name] = (ctr.id, int(ctr.attrs.get("RestartCount", 0)))
        return out

    # -- recreate --------------------------------------------------------------------------------
    def _recreate(self, units: list[Unit]) -> None:
        from .docker import _labels

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
            self._remove_volume(vname)
            self.client.volumes.create(vname, labels=_labels(self.name, self.scenario.name))  # type: ignore[attr-defined]
        for u, pause_attrs, members in saved:
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
    def _append_data(self, nbytes: int, line: bytes = b"12345\n") -> None:
        """Append ``nbytes`` of numbers to the generator's data file, from inside its container."""
        n = max(1, nbytes // len(line)) * len(line)
        text = line.decode().strip()
        gen = next(c.name for c in self.scenario.containers if "generator" in c.runs)  # type: ignore[attr-defined]
        res = self._get(self.container_name(gen)).exec_run(  # type: ignore[attr-defined]
            ["sh", "-c", f"yes {text} | head -c {n} >> data"])
        if res.exit_code:
            raise AppcoupError("Could not append to the generator's data file.",
                               why=res.output.decode(errors="replace")[-300:], fix="look at app.status()")

    def volumes(self) -> Table:
        """Which container mounts which volume: Docker's own words (``docker inspect`` Mounts)."""
        rows = []
        for c in self.scenario.containers:  # type: ignore[attr-defined]
            for m in self._get(self.container_name(c.name)).attrs.get("Mounts") or []:  # type: ignore[attr-defined]
                rows.append({"container": c.name, "volume": m.get("Name") or m.get("Source"),
                             "kind": self.scenario.volumes.get(c.volume or "", "?"),  # type: ignore[attr-defined]
                             "type": m.get("Type"), "mounted at (in the container)": m.get("Destination")})
        return Table(rows)

    def resolve(self, name: str, *, container: str = "echo") -> dict[str, Any]:
        """Ask Docker's DNS, from inside ``container``, who ``name`` is."""
        script = ("import socket,sys; n=sys.argv[1]; print(' '.join(sorted(socket.gethostbyname_ex(n)[2]))); "
                  "print([l.split()[1] for l in open('/etc/resolv.conf') if l.startswith('nameserver')][0])")
        res = self._get(self.container_name(container)).exec_run(["python3", "-c", script, name])  # type: ignore[attr-defined]
        out = res.output.decode(errors="replace").split("\n")
        if res.exit_code:
            raise AppcoupError(f"{name!r} does not resolve inside {container!r}.", why=" ".join(out)[-300:],
                               fix="look at app.status(): is the unit serving it running?")
        return {"name": name, "addresses": out[0].split(), "resolver": f"Docker's embedded DNS ({out[1]})"}
