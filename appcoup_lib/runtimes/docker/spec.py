"""``app.spec()`` and ``app.commands()`` on Docker: read from the app's real containers (``docker inspect``).

The spec is the Dockerfile of every image the app's containers run (as it was built: tag, base) and
each container's settings in the words of ``docker run`` (network mode, volumes, ports, env,
restart policy, healthcheck, labels). The commands are the ``docker`` lines that make the same
objects by hand, then those that look at them. Every engine call goes through :func:`~.engine.errors`.
"""

from __future__ import annotations

import shlex
from typing import Any

from ...labels import APP_LABEL
from ..spec import Commands, Part, Spec, build_command, dockerfile_part, ps_argv
from .engine import errors

# The labels appcoup puts on its objects (its bookkeeping; a container by hand needs none of them).
_OWN = ("app.kubernetes.io/", "appcoup.")


def _order(ctr: Any) -> tuple[int, str]:
    # The namespace holders first (the others join them), then in the order they were created.
    return (0 if ctr.labels.get("appcoup.container") == "pause" else 1, ctr.attrs.get("Created", ""))


class _Engine:
    """What the engine says about one app's objects (inspected once per call of spec/commands)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        with errors(f"Cannot inspect the objects of {app.name!r}"):
            self.containers = sorted(app.owned(), key=_order)
            self.networks = app.owned("networks")
            self.volumes = app.owned("volumes")
            self.images: dict[str, dict[str, Any]] = {}
            for c in self.containers:
                ref = c.attrs["Config"]["Image"]
                if ref not in self.images:
                    try:
                        self.images[ref] = app.client.images.get(ref).attrs
                    except Exception:  # noqa: BLE001 - an image removed since: compare with nothing
                        self.images[ref] = {}
        self.names = {c.id: c.name for c in self.containers}

    def image_config(self, ctr: Any) -> dict[str, Any]:
        return (self.images.get(ctr.attrs["Config"]["Image"]) or {}).get("Config") or {}

    def run_args(self, ctr: Any) -> list[str]:
        """``docker run`` arguments that make ``ctr`` again: only what differs from its image."""
        cfg, host = ctr.attrs["Config"], ctr.attrs["HostConfig"]
        img = self.image_config(ctr)
        args = ["-d", "--name", ctr.name]
        restart = (host.get("RestartPolicy") or {}).get("Name") or "no"
        if restart not in ("no", ""):
            args += ["--restart", restart]
        if cfg.get("User") and cfg.get("User") != img.get("User"):
            args += ["-u", cfg["User"]]
        mode = host.get("NetworkMode") or "default"
        if mode.startswith("container:"):
            ref = mode.split(":", 1)[1]
            args += ["--network", f"container:{self.names.get(ref, ref)}"]
        elif mode not in ("default", "bridge"):
            args += ["--network", mode]
            net = ((ctr.attrs.get("NetworkSettings") or {}).get("Networks") or {}).get(mode) or {}
            for alias in net.get("Aliases") or []:
                if alias not in (ctr.name, ctr.id[:12]):
                    args += ["--network-alias", alias]
        bound = (ctr.attrs.get("NetworkSettings") or {}).get("Ports") or {}
        for port, binds in sorted((host.get("PortBindings") or {}).items()):
            for b in binds or []:
                hp = b.get("HostPort") or next((x.get("HostPort") for x in bound.get(port) or []), "")
                args += ["-p", ":".join(x for x in (b.get("HostIp") or "", hp, port.split("/")[0]) if x)]
        for bind in host.get("Binds") or []:
            src, dst, *mode_ = bind.split(":")
            args += ["-v", f"{src}:{dst}" + (":ro" if mode_ and "ro" in mode_[0].split(",") else "")]
        if cfg.get("WorkingDir") and cfg.get("WorkingDir") != img.get("WorkingDir"):
            args += ["-w", cfg["WorkingDir"]]
        for e in cfg.get("Env") or []:
            if e not in (img.get("Env") or []):
                args += ["-e", e]
        return args + self.image_and_command(ctr)

    def image_and_command(self, ctr: Any) -> list[str]:
        cfg, img = ctr.attrs["Config"], self.image_config(ctr)
        return [cfg["Image"], *(cfg["Cmd"] if cfg.get("Cmd") and cfg.get("Cmd") != img.get("Cmd") else [])]


def _healthcheck(hc: dict[str, Any] | None) -> str:
    if not hc or not hc.get("Test") or hc["Test"] == ["NONE"]:
        return "none"
    test = hc["Test"]
    cmd = test[1] if test[0] == "CMD-SHELL" else " ".join(test[1:])
    every = f", every {hc['Interval'] / 1e9:g} s" if hc.get("Interval") else ""
    return f"{cmd}{every}, {hc.get('Retries', 3)} retries (Docker marks it unhealthy; it restarts nothing)"


def spec(app: Any) -> Spec:
    """The Dockerfiles of the images the app's containers run, then each container's settings."""
    eng = _Engine(app)
    parts: list[Part] = []
    seen: set[str] = set()
    for ctr in eng.containers:
        tag = ctr.attrs["Config"]["Image"]
        if tag in seen:
            continue
        seen.add(tag)
        part = dockerfile_part(tag)
        if part is not None:
            parts.append(part)
    blocks = []
    for ctr in eng.containers:
        st = ctr.attrs.get("State") or {}
        labels = ctr.labels
        own = sorted(k for k in labels if k.startswith(_OWN))
        health = _healthcheck(ctr.attrs["Config"].get("Healthcheck") or eng.image_config(ctr).get("Healthcheck"))
        mode = ctr.attrs["HostConfig"].get("NetworkMode") or "default"
        if mode.startswith("container:"):
            mode = f"container:{eng.names.get(mode[len('container:'):], '?')} (its network namespace, by id)"
        shown = ", ".join(f"{k}={labels[k]}" for k in (APP_LABEL, "appcoup.container", "appcoup.unit") if k in labels)
        head = [f"# {ctr.name}: {st.get('Status', '?')}, restarted {ctr.attrs.get('RestartCount', 0)} times"
                + (f", health {st['Health']['Status']}" if st.get("Health") else ""),
                f"# network mode: {mode}",
                f"# healthcheck (from the image): {health}",
                f"# labels: {len(labels)}, {len(own)} of them appcoup's bookkeeping (left out below): {shown}, ..."]
        tail = eng.image_and_command(ctr)
        flags = eng.run_args(ctr)[: -len(tail)]
        lines, cur = [], ["docker", "run"]
        for a in flags:  # one flag and its value a line, as the docs write a long docker run
            if a.startswith("-") and len(cur) > 1:
                lines.append(" ".join(cur))
                cur = []
            cur.append(shlex.quote(a))
        lines += [" ".join(cur), shlex.join(tail)]
        blocks.append("\n".join(head) + "\n" + " \\\n    ".join(lines))
    parts.append(Part(f"the containers of {app.name}, as `docker run` would state them", "sh", "\n\n".join(blocks)))
    return Spec(app.name, "docker", parts)


def commands(app: Any) -> Commands:
    """The ``docker`` lines that make this app by hand (images, network, volumes, containers), then look at it."""
    eng = _Engine(app)
    steps: list[tuple[str, str]] = []
    for tag in dict.fromkeys(c.attrs["Config"]["Image"] for c in eng.containers):
        step = build_command(tag)
        if step is not None:
            steps.append(step)
    for net in eng.networks:
        steps.append((f"a network of its own: Docker's DNS answers the service names there ({net.name})",
                      f"docker network create {shlex.quote(net.name)}"))
    for vol in eng.volumes:
        steps.append((f"the named volume {vol.name}", f"docker volume create {shlex.quote(vol.name)}"))
    binds = {b.split(":")[0] for c in eng.containers for b in c.attrs["HostConfig"].get("Binds") or []
             if b.startswith("/")}
    for d in sorted(binds):
        steps.append(("the host directory mounted into a container", f"mkdir -p {shlex.quote(d)}"))
    for ctr in eng.containers:
        role = ctr.labels.get("appcoup.container", "?")
        why = ("the pause container: it holds the pod's network namespace (and publishes its port)"
               if role == "pause" else f"the container {role} (unit {ctr.labels.get('appcoup.unit', '?')})")
        steps.append((why, shlex.join(["docker", "run", *eng.run_args(ctr)])))
    steps.append(("what runs (get)", f"docker ps -a --filter label={APP_LABEL}={app.name}"))
    for c in app.scenario.containers:
        name = app.container_name(c.name)
        if name not in eng.names.values():
            continue
        steps.append((f"what {c.name} printed (logs)", f"docker logs {name}"))
        argv = ps_argv(next(x.attrs["Config"]["Image"] for x in eng.containers if x.name == name))
        steps.append((f"the processes inside {c.name} (exec)", shlex.join(["docker", "exec", name, *argv])))
        steps.append((f"everything Docker knows of {c.name} (describe)", f"docker inspect {name}"))
    steps.append(("what happened (events of the last 10 minutes)",
                  f"docker events --since 10m --until 0s --filter label={APP_LABEL}={app.name}"))
    gone = [c.name for c in reversed(eng.containers)]  # members before the pause they joined
    steps.append(("remove it all, as app.down() does",
                  " && ".join(x for x in (
                      shlex.join(["docker", "rm", "-f", *gone]) if gone else "",
                      shlex.join(["docker", "volume", "rm", *(v.name for v in eng.volumes)]) if eng.volumes else "",
                      shlex.join(["docker", "network", "rm", *(n.name for n in eng.networks)]) if eng.networks
                      else "") if x)))
    return Commands(steps)


__all__ = ["commands", "spec"]
