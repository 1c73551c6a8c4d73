"""The Docker objects of an app: their names and labels, host ports, re-creating and removing them.

Every object carries the label ``app.kubernetes.io/part-of=appcoup`` and ``appcoup.app=<name>``,
so ``down``, ``clean`` and ``attach`` (from another process) find them all.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from ...errors import AppcoupError
from ...labels import APP_LABEL, LABEL, LABEL_VALUE, LEARNER_LABEL, PREFIX, SCENARIO_LABEL
from ...paths import state_dir
from .. import ports
from ..base import learner
from .engine import host_address, in_parallel


def labels(app: str, scenario: str, **extra: str) -> dict[str, str]:
    """The labels of every object of app ``app`` (``extra``: the container's own)."""
    return {LABEL: LABEL_VALUE, SCENARIO_LABEL: scenario, APP_LABEL: app, LEARNER_LABEL: learner(), **extra}


def container_name(app: str, container: str) -> str:
    """The Docker name of a scenario container (``appcoup-pod-echo``)."""
    return f"{app}-{container}"


def pause_name(app: str, unit: str) -> str:
    """The Docker name of the container holding a unit's network namespace."""
    return f"{app}-{unit}-pause"


def state_root(create: bool = True) -> Path:
    """Where the docker runtime keeps what lives on this machine (host directories, journals)."""
    p = state_dir() / "docker"
    if create:
        p.mkdir(parents=True, exist_ok=True)
    return p


# -- host ports --------------------------------------------------------------------------------------
def port_holder(client: Any, port: int) -> str | None:
    """Who holds host ``port``: a container by name (first), or a process; None when free."""
    # One list call (the low-level one: the models' list inspects every container in turn).
    holders = [c for c in client.api.containers(filters={"status": "running"})
               if any(p.get("PublicPort") == port for p in c.get("Ports") or [])]
    if len(holders) > 1:
        # Podman lists the port on every container of a shared network namespace (a pod's members
        # too): the holder is the one that joins no other's (Docker lists the port only there).
        own = [c for c in holders if not _joins_another(client, c["Id"])]
        holders = own or holders
    if holders:
        lab = holders[0].get("Labels") or {}
        name = (holders[0].get("Names") or ["?"])[0].lstrip("/")
        owner = lab.get(APP_LABEL)
        how = (f", part of the appcoup app {owner!r} (stop it: appcoup down "
               f"{lab.get(SCENARIO_LABEL)} --runtime docker)") if owner else ""
        return f"the container {name!r}{how}"
    if host_address() != "127.0.0.1":
        return None  # a remote engine: only its containers can be checked from here
    if ports.bind_free(port, "") is not None:
        return None
    return ports.process_holder(port)


def _joins_another(client: Any, container_id: str) -> bool:
    """Whether the container runs in another container's network namespace (``--network container:``)."""
    import docker.errors

    try:
        mode = client.api.inspect_container(container_id)["HostConfig"].get("NetworkMode") or ""
    except docker.errors.NotFound:
        return True  # gone since it was listed: not the holder
    return str(mode).startswith("container:")


def free_port(client: Any) -> int:
    """A host port that neither a container nor a process here holds."""
    return ports.free_port(lambda port: port_holder(client, port) is None)


# -- the same container again ------------------------------------------------------------------------
def recreate_kwargs(attrs: dict[str, Any]) -> dict[str, Any]:
    """The ``containers.run`` arguments that make again the container ``attrs`` (``docker inspect``) describes."""
    cfg, host = attrs["Config"], attrs["HostConfig"]
    kw: dict[str, Any] = {
        "name": attrs["Name"].lstrip("/"), "command": cfg.get("Cmd"), "detach": True,
        "labels": cfg.get("Labels") or {}, "environment": cfg.get("Env") or [],
        "working_dir": cfg.get("WorkingDir") or None,
        "restart_policy": host.get("RestartPolicy") or None,
    }
    mode = host.get("NetworkMode") or ""
    if mode.startswith("container:"):
        kw["network_mode"] = mode
    elif mode and mode not in ("default", "bridge"):
        kw["network"] = mode
    if host.get("Binds"):  # bind mounts and named volumes alike
        kw["volumes"] = [_bind(b) for b in host["Binds"]]
    if host.get("PortBindings"):
        # Keep the host port actually bound (a port picked by Docker shows as "" in PortBindings).
        bound = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
        kw["ports"] = {}
        for k, v in host["PortBindings"].items():
            hp = next((b["HostPort"] for b in (bound.get(k) or []) if b.get("HostPort")), None) or (
                v[0].get("HostPort") if v else None)
            ip = (v[0].get("HostIp") if v else "") or ""
            kw["ports"][k] = ((ip, int(hp)) if ip else int(hp)) if hp else None
    return kw


def _bind(bind: str) -> str:
    """``src:dst:mode`` as ``docker run -v`` takes it again.

    Podman reports the options it mounted with (``vol:/data:rw,rprivate,nosuid,nodev,rbind``),
    which neither engine takes back in a ``-v``: only ``ro``/``rw`` is kept (Docker reports
    what it was given, ``vol:/data:rw``, unchanged by this).
    """
    parts = bind.split(":")
    if len(parts) < 3:
        return bind
    return f"{parts[0]}:{parts[1]}:{'ro' if 'ro' in parts[2].split(',') else 'rw'}"


# -- removing ----------------------------------------------------------------------------------------
def remove_volume(client: Any, name: str) -> None:
    """Remove volume ``name`` (gone already is fine); a volume still held after 2 s is an error."""
    import docker.errors

    for attempt in range(20):  # a just-removed container may hold it for a moment
        try:
            client.volumes.get(name).remove(force=True)
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            if attempt == 19:
                raise  # still in use: the caller must not go on as if it were gone
            time.sleep(0.1)


def remove_app(client: Any, name: str | None, *, learner_only: str | None = None) -> list[str]:
    """Remove the containers, networks and volumes of app ``name``; with no name, every appcoup
    app of learner ``learner_only`` (of every learner when None). Returns what was removed."""
    import docker.errors

    if name:
        flt: dict[str, Any] = {"label": f"{APP_LABEL}={name}"}
    elif learner_only:
        flt = {"label": [f"{LABEL}={LABEL_VALUE}", f"{LEARNER_LABEL}={learner_only}"]}
    else:
        flt = {"label": f"{LABEL}={LABEL_VALUE}"}
    apps: set[str] = {name} if name else set()
    removed: list[str] = []
    errors: list[str] = []

    def remove(ctr: Any) -> None:
        apps.add(ctr.labels.get(APP_LABEL, ""))
        try:
            ctr.remove(force=True, v=True)
            removed.append(f"container {ctr.name}")
        except docker.errors.NotFound:
            pass
        except docker.errors.DockerException as e:
            errors.append(f"container {ctr.name}: {e}")

    # Members first (together), then the pause containers whose namespace they used.
    ctrs = client.containers.list(all=True, filters=flt)
    for pauses in (False, True):
        batch = [c for c in ctrs if (c.labels.get("appcoup.container") == "pause") == pauses]
        if batch:
            in_parallel([lambda c=c: remove(c) for c in batch])
    for net in client.networks.list(filters=flt):
        apps.add((net.attrs.get("Labels") or {}).get(APP_LABEL, ""))
        try:
            net.remove()
            removed.append(f"network {net.name}")
        except docker.errors.NotFound:
            pass
        except docker.errors.DockerException as e:
            errors.append(f"network {net.name}: {e}")
    for vol in client.volumes.list(filters=flt):
        apps.add((vol.attrs.get("Labels") or {}).get(APP_LABEL, ""))
        for attempt in range(20):  # a just-removed container may hold the volume for a moment
            try:
                vol.remove(force=True)
                removed.append(f"volume {vol.name}")
                break
            except docker.errors.NotFound:
                break
            except docker.errors.APIError as e:
                if attempt == 19:
                    errors.append(f"volume {vol.name}: {e}")
                time.sleep(0.1)
    root = state_root(create=False)
    dirs = sorted(root.iterdir()) if root.is_dir() else []
    # A directory goes with its app, or when no app of that name is left on the engine at all
    # (a host dir left by a killed kernel); a learner's clean only looks at their own names.
    mine = f"{PREFIX}{learner_only}-" if learner_only else ""
    for d in dirs:
        if d.name not in apps and not (d.name.startswith(mine) and not name and not client.containers.list(
                all=True, filters={"label": f"{APP_LABEL}={d.name}"})):
            continue
        if d.exists():
            shutil.rmtree(d, ignore_errors=True)
            removed.append(f"directory {d}")
    if errors:
        raise AppcoupError(f"Could not remove everything of {name or 'appcoup'} on Docker.",
                           why="; ".join(errors), fix="run `appcoup clean --runtime docker` again, or `docker rm -f`")
    return removed


def remove_after_failed_start(client: Any, name: str) -> None:
    """Clean up after a failed start without hiding why it failed (the caller re-raises that)."""
    try:
        remove_app(client, name)
    except Exception:  # noqa: BLE001, S110 - the original error matters more; `appcoup clean` remains
        pass


__all__ = ["container_name", "free_port", "labels", "pause_name", "port_holder", "recreate_kwargs",
           "remove_after_failed_start", "remove_app", "remove_volume", "state_root"]
