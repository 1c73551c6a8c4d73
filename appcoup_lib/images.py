"""Build the course's images from ``images/`` on the local Docker engine, with no registry needed.

Every image is tagged ``appcoup/<name>:<hash>``, where the hash covers everything the image is
made of (its Dockerfile, the files it copies, its build arguments and its base), so an unchanged
image is never rebuilt and a changed one never hides behind ``:latest``.

Bases: the Dockerfiles default to the usual public bases (``ARG BASE=...``). Offline (no registry
reachable, as in many workshops) the bases are made from this machine instead, by the scripts in
``images/base/``: a static busybox for shell-only images and a debootstrapped Debian with python3.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .changes import CHANGES, change_one_line  # noqa: F401 - re-exported (older imports)
from .errors import AppcoupError, BuildError, RuntimeUnavailable
from .paths import images_dir
from .progress import Progress
from .refs import short_ref

LABEL = "app.kubernetes.io/part-of"
LABEL_VALUE = "appcoup"
REPO = "appcoup"
NAMES: tuple[str, ...] = ("generator", "echo", "adapter", "combined", "combined-init", "combined-restart")
# Images the Docker runtime needs besides the course's programs (the pod's namespace holder).
INTERNAL: tuple[str, ...] = ("pause", "front")
BaseKind = Literal["busybox", "python"]


@dataclass(frozen=True)
class ImageSpec:
    """How one image is built: its Dockerfile (relative to the context), build args and base kind."""

    name: str
    dockerfile: str
    buildargs: tuple[tuple[str, str], ...] = ()
    base: BaseKind = "python"


SPECS: dict[str, ImageSpec] = {s.name: s for s in (
    ImageSpec("generator", "generator/Dockerfile", base="busybox"),
    ImageSpec("echo", "echo/Dockerfile"),
    ImageSpec("adapter", "adapter/Dockerfile"),
    ImageSpec("combined", "combined/Dockerfile", (("SUPERVISOR", "app.sh"),)),
    ImageSpec("combined-init", "combined/Dockerfile", (("SUPERVISOR", "app-init.sh"),)),
    ImageSpec("combined-restart", "combined/Dockerfile", (("SUPERVISOR", "app-restart.sh"),)),
    ImageSpec("pause", "base/pause/Dockerfile", base="busybox"),
    ImageSpec("front", "front/Dockerfile"),
)}

# The offline bases: the script that makes each root file system, and the image it becomes.
_BASE_SCRIPTS: dict[str, str] = {"busybox": "rootfs-busybox.sh", "python": "rootfs-python.sh"}
_BASE_CHANGES = [
    f"LABEL {LABEL}={LABEL_VALUE}",
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    'CMD ["sh"]',
]


@dataclass(frozen=True)
class BuiltImage:
    """The result of :func:`build` for one image."""

    name: str
    tag: str
    built: bool  # False: it was there already and nothing it is made of changed
    seconds: float
    size: int  # bytes

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "tag": self.tag, "built": "yes" if self.built else "no (unchanged)",
                "seconds": f"{self.seconds:.1f}", "size": f"{self.size / 1e6:.1f} MB"}


# -- the engine ----------------------------------------------------------------------------------
_CLIENT: dict[str, Any] = {}  # one client per engine and process: connecting costs a round trip


def _client() -> Any:
    from .runtimes.docker.engine import connect

    where = os.environ.get("DOCKER_HOST", "")  # another engine (DOCKER_HOST changed): another client
    if where not in _CLIENT:
        _CLIENT[where] = connect()
    return _CLIENT[where]


def _exists(client: Any, ref: str) -> bool:
    import docker.errors

    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.APIError as e:
        raise AppcoupError(f"Docker could not look up the image {ref!r}.", why=str(e),
                           fix="check that the Docker engine runs: `docker info`") from e


def exists(ref: str) -> bool:
    """Whether this machine's Docker engine has the image ``ref``; False when no engine answers here
    (then an image can only come from a node or a registry)."""
    try:
        return _exists(_client(), ref)
    except RuntimeUnavailable:
        return False


# -- what an image is made of ------------------------------------------------------------------
def _dockerfile_base_default(text: str) -> str:
    m = re.search(r"^\s*ARG\s+BASE=(\S+)", text, re.MULTILINE)
    return m.group(1) if m else ""


def _copied_files(context: Path, text: str, args: dict[str, str]) -> list[Path]:
    """The files a Dockerfile's COPY/ADD lines read from the context (build args substituted)."""
    values = dict(re.findall(r"^\s*ARG\s+(\w+)=(\S+)", text, re.MULTILINE))
    values.update(args)

    def subst(s: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), ""), s)

    out: list[Path] = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        words = line.strip().split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        srcs = [w for w in words[1:] if not w.startswith("--")][:-1]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        for src in srcs:
            matches = sorted(context.glob(subst(src))) or [context / subst(src)]
            for p in matches:
                out.extend(sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p])
    return out


def _inputs_hash(context: Path, spec: ImageSpec, base: str, base_id: str) -> str:
    dockerfile = context / spec.dockerfile
    text = dockerfile.read_text()
    h = hashlib.sha256()
    h.update(text.encode())
    for k, v in sorted(spec.buildargs):
        h.update(f"\0arg {k}={v}".encode())
    h.update(f"\0base {base} {base_id}".encode())
    for f in _copied_files(context, text, dict(spec.buildargs)):
        h.update(f"\0file {f.relative_to(context)}\0".encode())
        h.update(f.read_bytes() if f.exists() else b"(missing)")
    return h.hexdigest()[:12]


def _spec(name: str) -> ImageSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise AppcoupError(f"There is no image {name!r}.", fix=f"use one of: {', '.join(SPECS)}") from None


def _digest(path: str) -> str:
    """sha256 of a file, cached while its size and mtime stay the same (busybox is 2 MB)."""
    try:
        st = os.stat(path)
    except OSError:
        return "(missing)"
    return _digest_cached(path, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _digest_cached(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- bases ---------------------------------------------------------------------------------------
def local_base_tag(kind: BaseKind) -> str:
    """The tag of the offline base of ``kind``, a hash of what it is made from."""
    script = images_dir() / "base" / _BASE_SCRIPTS[kind]
    h = hashlib.sha256(script.read_bytes())
    h.update(platform.machine().encode())
    if kind == "busybox":
        h.update(_digest("/bin/busybox").encode())
    else:
        try:
            osrel = Path("/etc/os-release").read_text()
        except OSError:
            osrel = ""
        h.update(osrel.encode())
    return f"{REPO}/base-{kind}:{h.hexdigest()[:12]}"


def public_base(kind: BaseKind) -> str:
    """The public base the Dockerfiles name by default for ``kind``."""
    name = "generator" if kind == "busybox" else "echo"
    return _dockerfile_base_default((images_dir() / SPECS[name].dockerfile).read_text())


def _offline_forced(offline: bool | None) -> bool | None:
    if offline is not None:
        return offline
    env = os.environ.get("APPCOUP_OFFLINE")
    if env is not None and env != "":
        return env not in ("0", "false", "no")
    return None


def _base_for(client: Any, kind: BaseKind, offline: bool | None, *, act: bool, bar: Progress | None = None) -> str:
    """The base image to build on. With ``act``, pull or build it when missing.

    Auto mode (``offline=None``): a public base already here wins; else an offline base already
    here; else try one pull; when that fails (no registry), build the offline base.
    """
    offline = _offline_forced(offline)
    public, local = public_base(kind), local_base_tag(kind)
    if offline is None:
        if _exists(client, public):
            return public
        if _exists(client, local) or not act:
            return _ensure_local_base(client, kind, bar) if act else local
        if _try_pull(client, public):
            return public
        return _ensure_local_base(client, kind, bar)
    if offline:
        return _ensure_local_base(client, kind, bar) if act else local
    if act and not _exists(client, public) and not _try_pull(client, public):
        raise BuildError(public, f"pull {public}", "the base image is not here and could not be pulled",
                         fix="build offline instead: `appcoup images build --offline` (or build(offline=True))")
    return public


def _try_pull(client: Any, ref: str) -> bool:
    import docker.errors

    repo, _, tag = ref.partition(":")
    try:
        client.images.pull(repo, tag=tag or None)
        return True
    except docker.errors.DockerException:
        return False


def _ensure_local_base(client: Any, kind: BaseKind, bar: Progress | None) -> str:
    tag = local_base_tag(kind)
    if _exists(client, tag):
        return tag
    script = images_dir() / "base" / _BASE_SCRIPTS[kind]
    if kind == "python" and os.geteuid() != 0:
        raise AppcoupError(
            "Cannot make the offline python base image: debootstrap must run as root.",
            why="no python base image is on this machine and no registry answers",
            fix="run `sudo appcoup images build --offline` once (Docker keeps the image afterwards)")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="appcoup-base-") as tmp:
        out = Path(tmp) / "rootfs.tar"
        if bar is not None:
            bar.write(f"base-{kind}: making the root file system"
                      + (" (debootstrap, a few minutes)" if kind == "python" else ""))
        # Stream the script's output into the progress display: debootstrap talks as it goes.
        proc = subprocess.Popen(["sh", str(script), str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        log: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line)
            if bar is not None and line.strip():
                bar.write(f"base-{kind}: {line.strip()}")
        if proc.wait() != 0:
            need = "debootstrap" if kind == "python" else "busybox-static"
            raise BuildError(tag, f"sh images/base/{script.name}", "".join(log),
                             fix=f"install what it needs (`apt-get install {need}`, or run .ci/docker-up) "
                                 "and build again")
        try:
            from .runtimes.docker.engine import import_rootfs  # Docker and Podman alike
            import_rootfs(client, out, tag, changes=_BASE_CHANGES)
        except Exception as e:
            raise BuildError(tag, "docker import", str(e)) from e
    if bar is not None:
        bar.write(f"base-{kind}: made in {time.monotonic() - t0:.0f} s")
    return tag


def bases(offline: bool | None = None) -> dict[str, str]:
    """The base each kind of image builds on now (nothing is pulled or built)."""
    client = _client()
    return {k: _base_for(client, k, offline, act=False) for k in ("busybox", "python")}  # type: ignore[misc]


# -- tags and builds -------------------------------------------------------------------------------
def tag_for(name: str, *, context: str | Path | None = None, offline: bool | None = None,
            base: str | None = None, portable: bool = False) -> str:
    """``appcoup/<name>:<hash of its inputs>`` for the image ``name`` (nothing is built); ``portable``: of its
    files alone (the base's kind, not its id: no engine needed), the tag a registry or a preload holds."""
    spec = _spec(name)
    ctx = Path(context) if context else images_dir()
    if portable:
        return f"{REPO}/{name}:{_inputs_hash(ctx, spec, spec.base, '')}"
    client = _client()
    base = base or _base_for(client, spec.base, offline, act=False)
    return f"{REPO}/{name}:{_inputs_hash(ctx, spec, base, _image_id(client, base))}"


def _image_id(client: Any, ref: str) -> str:
    import docker.errors

    try:
        return client.images.get(ref).id
    except docker.errors.DockerException:
        return ""


def build(names: Iterable[str] | None = None, *, offline: bool | None = None, progress: bool | None = None,
          context: str | Path | None = None, force: bool = False) -> dict[str, BuiltImage]:
    """Build the images ``names`` (default: all of :data:`NAMES`); skip those already up to date.

    Args:
        names: image names (``"echo"``, ``"combined-init"``, ...).
        offline: True: build on local bases made from this machine (no registry);
            False: the public bases (pulled if missing); None: public if possible, else offline.
        progress: show a progress bar with the current build step (default: when interactive).
        context: an alternative build context laid out like ``images/`` (a changed copy).
        force: rebuild even when an image with the same inputs exists.

    Raises:
        BuildError: a build failed; carries the failing step and the log.
    """
    todo = list(dict.fromkeys(names or NAMES))
    specs = [_spec(n) for n in todo]
    ctx = Path(context) if context else images_dir()
    client = _client()
    out: dict[str, BuiltImage] = {}
    with Progress("images", total=len(todo), enabled=progress, unit="image") as bar:
        base_of = {k: _base_for(client, k, offline, act=True, bar=bar) for k in sorted({s.base for s in specs})}
        for spec in specs:
            base = base_of[spec.base]
            tag = f"{REPO}/{spec.name}:{_inputs_hash(ctx, spec, base, _image_id(client, base))}"
            t0 = time.monotonic()
            if force or not _exists(client, tag):
                _build_one(client, ctx, spec, tag, base, bar)
                built = True
            else:
                bar.write(f"{spec.name}: up to date")
                built = False
            size = int(client.images.get(tag).attrs.get("Size", 0))
            out[spec.name] = BuiltImage(spec.name, tag, built, time.monotonic() - t0, size)
            bar.tick()
    return out


def _build_one(client: Any, ctx: Path, spec: ImageSpec, tag: str, base: str, bar: Progress) -> None:
    import docker.errors

    log: list[str] = []
    step = "(starting the build)"
    try:
        stream = client.api.build(
            path=str(ctx), dockerfile=spec.dockerfile, tag=tag, rm=True, forcerm=True, pull=False,
            decode=True, buildargs={**dict(spec.buildargs), "BASE": base},
            labels={LABEL: LABEL_VALUE, "appcoup.image": spec.name},
        )
        for chunk in stream:
            if "stream" in chunk:
                text = chunk["stream"]
                log.append(text)
                m = re.match(r"Step \d+/\d+ ?: (.*)", text.strip(), re.IGNORECASE)  # Podman: "STEP 2/5: ..."
                if m:
                    step = text.strip()
                    bar.write(f"{spec.name}: {step}")
            elif "error" in chunk:
                log.append(chunk["error"])
                raise BuildError(spec.name, step, "".join(log))
    except docker.errors.APIError as e:
        raise BuildError(spec.name, step, "".join(log) + str(e.explanation or e)) from e
    except docker.errors.DockerException as e:
        raise BuildError(spec.name, step, "".join(log) + str(e)) from e


def ensure(names: Iterable[str], *, progress: bool | None = None) -> dict[str, str]:
    """The tags of ``names``, built first when missing (offline fallback automatic)."""
    names = list(names)
    client = _client()
    tags = {n: tag_for(n) for n in names}
    if all(_exists(client, t) for t in tags.values()):
        return tags  # the usual case: no progress bar flashes by for nothing
    return {n: b.tag for n, b in build(names, progress=progress).items()}


def changed_bytes(old: str, new: str) -> int:
    """Bytes in the layers of image ``new`` that image ``old`` does not share.

    A history step is known by its id, or by what made it and when (Podman names most steps ``<missing>``).
    """
    client = _client()
    old_layers = set(client.images.get(old).attrs["RootFS"].get("Layers", []))
    if not set(client.images.get(new).attrs["RootFS"].get("Layers", [])) - old_layers:
        return 0
    old_steps = {_step(h) for h in client.api.history(old)}
    return sum(int(h.get("Size", 0)) for h in client.api.history(new) if _step(h) not in old_steps)


def _step(h: dict[str, Any]) -> Any:
    return h["Id"] if h.get("Id") not in (None, "<missing>") else (h.get("CreatedBy"), h.get("Created"), h.get("Size"))


def build_changed(names: Iterable[str], *, context: str | Path, progress: bool | None = False) -> dict[str, BuiltImage]:
    """Build those of the images ``names`` whose inputs differ in ``context`` (a changed copy of ``images/``).

    Only those: an image the change does not touch keeps its tag, and is left out of the result.
    """
    changed = sorted({n for n in names if tag_for(n, context=context) != tag_for(n)})
    return build(changed, context=context, progress=progress) if changed else {}


def remove(tags: Iterable[str]) -> None:
    """Remove the images ``tags`` (a lesson's or a rollout's changed ones), so the next run builds again.

    Best effort: an image still used, or gone already, is left as it is (it only costs disk space).
    """
    tags = list(tags)
    if not tags:
        return
    client = _client()
    for t in tags:
        try:
            client.images.remove(t, force=True)
        except Exception:  # noqa: BLE001, S110 - a leftover image is only disk space
            pass


def remove_all() -> list[str]:
    """Remove every appcoup image (bases included); return the tags removed."""
    import docker.errors

    client = _client()
    removed = []
    for img in client.images.list(filters={"label": f"{LABEL}={LABEL_VALUE}"}):
        for t in img.tags:
            try:
                client.images.remove(t, force=True)
                removed.append(t)
            except docker.errors.DockerException:
                pass
    return removed


def prune() -> list[str]:
    """Remove appcoup images older than the current inputs (kept tags: what :func:`tag_for` names now)."""
    import docker.errors

    client = _client()
    current = {tag_for(n) for n in SPECS} | {local_base_tag("busybox"), local_base_tag("python")}
    removed = []
    for img in client.images.list(filters={"label": f"{LABEL}={LABEL_VALUE}"}):
        for t in [short_ref(t) for t in img.tags]:  # Podman's names carry a registry's host
            if t.startswith(f"{REPO}/") and t not in current:
                try:
                    client.images.remove(t)
                    removed.append(t)
                except docker.errors.DockerException:
                    pass  # still used by a container: keep it
    return removed


def cli_build(offline: bool = False, names: list[str] | None = None) -> str:
    """What ``appcoup images build [--offline]`` prints: a table of name, tag, built, seconds."""
    from .runtimes.base import Table

    res = build(names or None, offline=True if offline else None, progress=True)
    return str(Table([b.row() for b in res.values()], ["name", "tag", "built", "seconds", "size"]))


__all__ = ["CHANGES", "NAMES", "BuiltImage", "bases", "build", "build_changed", "change_one_line", "changed_bytes",
           "ensure", "local_base_tag", "prune", "public_base", "remove", "remove_all", "tag_for"]
