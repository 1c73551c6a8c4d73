"""The workshop bundle: one archive that installs and runs the course with the network off.

``make bundle`` (``python -m appcoup_lib.bundle make``) writes ``build/appcoup-bundle.tar.gz``::

    appcoup-bundle/
      MANIFEST.json  MANIFEST.txt   what is inside: Python and platform tags, sizes, image tags, date
      wheels/*.whl                  the course and every dependency of ``.[dev]`` as wheels (no build
                                    step on install), plus pip, setuptools, wheel, hatchling, editables
      images/appcoup-images.tar     ``docker save`` of the course's images and their local bases
      notebooks/                    the course, for a teacher who hands out the bundle alone

On the day, with no network: ``make lab BUNDLE=path`` / ``make test BUNDLE=path`` call
``install`` (``pip install --no-index --find-links``) and ``load`` (``docker load``, when an engine
answers) instead of reaching an index or a registry.

This file runs as a plain script too (``python appcoup_lib/bundle.py install ...``), before
anything is installed: ``install`` and ``load`` need only the standard library (and the ``docker``
CLI or SDK); ``make`` uses the public API of :mod:`appcoup_lib.images` to know which images to save.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT_DIR = "appcoup-bundle"  # the one top directory inside the archive
IMAGES_TAR = "images/appcoup-images.tar"
DEFAULT_OUT = "build/appcoup-bundle.tar.gz"
# Installed next to the course: pip itself, and the build backends an editable install
# (`pip install -e .`, what `make venv` does) or an sdist would need, so nothing is built from an index.
TOOLS = ("pip", "setuptools", "wheel", "hatchling", "editables")
# Images besides the course's own that a bundle should carry, by tag (``--image``, or this variable,
# space-separated). The hook for the JupyterHub single-user image (issue 15 section 2): once it is
# built locally, name its tag here, or add it to ``appcoup_lib.images.SPECS``, whose images are all
# saved automatically.
ENV_EXTRA_IMAGES = "APPCOUP_BUNDLE_EXTRA_IMAGES"


def _say(msg: str) -> None:
    print(f"bundle: {msg}", file=sys.stderr, flush=True)


def _project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _python_info(python: str) -> dict[str, str]:
    code = ("import json, platform, sys, sysconfig; print(json.dumps({'version': platform.python_version(), "
            "'tag': f'cp{sys.version_info[0]}{sys.version_info[1]}', 'implementation': sys.implementation.name, "
            "'platform': sysconfig.get_platform(), 'machine': platform.machine()}))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


# -- the Docker engine (CLI first, the SDK when there is no CLI) ---------------------------------
def _docker_cli() -> str | None:
    return shutil.which("docker")


def engine_answers(timeout: float = 10) -> bool:
    """True when a Docker engine answers here (``DOCKER_HOST`` or the default socket)."""
    cli = _docker_cli()
    if cli:
        try:
            return subprocess.run([cli, "version", "--format", "{{.Server.Version}}"], capture_output=True,
                                  timeout=timeout, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False
    try:
        import docker

        docker.from_env(timeout=int(timeout)).ping()
        return True
    except Exception:  # noqa: BLE001 - no SDK, no engine: both mean "no engine answers"
        return False


def _image_facts(tag: str) -> dict[str, Any] | None:
    cli = _docker_cli()
    if not cli:
        return None
    out = subprocess.run([cli, "image", "inspect", "--format", "{{json .}}", tag], capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        return None
    a = json.loads(out.stdout)
    return {"id": a.get("Id", ""), "size": int(a.get("Size", 0))}


# -- make ----------------------------------------------------------------------------------------
def course_images(*, build: bool = True) -> dict[str, str]:
    """``{name: tag}`` of every image ``appcoup images build --offline`` makes, bases included.

    With ``build``, what is missing or out of date is built first (offline: no registry).
    """
    from appcoup_lib import images

    names = list(getattr(images, "SPECS", None) or (*images.NAMES, *images.INTERNAL))
    if build:
        tags = {n: b.tag for n, b in images.build(names, offline=True, progress=False).items()}
    else:
        tags = {n: images.tag_for(n, offline=True) for n in names}
    for kind in ("busybox", "python"):
        tags[f"base-{kind}"] = images.local_base_tag(kind)  # type: ignore[arg-type]
    return tags


def _wheels(python: str, project: Path, wheel_dir: Path, extras: str) -> None:
    cmd = [python, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--wheel-dir", str(wheel_dir),
           f"{project}[{extras}]" if extras else str(project), *TOOLS]
    _say("wheels: " + " ".join(cmd[1:]))
    subprocess.run(cmd, check=True)
    not_wheels = [p.name for p in wheel_dir.iterdir() if not p.name.endswith(".whl")]
    if not_wheels:
        raise RuntimeError(f"not wheels (would need a build step offline): {not_wheels}")


def _save_images(tags: list[str], target: Path) -> None:
    cli = _docker_cli()
    _say(f"images: docker save of {len(tags)} tags")
    if not cli:  # the SDK saves one image per archive: the shared base layers would be saved again
        raise RuntimeError("saving the images needs the docker CLI (docker save): install Debian's docker-cli")
    subprocess.run([cli, "save", "-o", str(target), *tags], check=True)


def _manifest_text(m: dict[str, Any]) -> str:
    def mb(n: float) -> str:
        return f"{n / 1e6:8.1f} MB"

    lines = [f"appcoup workshop bundle, made {m['created']} on {m['made_on']}",
             f"course: appcoup {m['appcoup_version']}",
             (f"python: {m['python']['implementation']} {m['python']['version']} ({m['python']['tag']}), "
              f"platform {m['python']['platform']}: install with this Python minor version on this platform"),
             "", f"wheels: {len(m['wheels'])}, {mb(m['sizes']['wheels']).strip()}"]
    lines += [f"  {mb(w['size'])}  {w['file']}" for w in m["wheels"]]
    lines += ["", f"images ({IMAGES_TAR}): {mb(m['sizes']['images']).strip()} saved"
              if m["images"] else "images: none (made without a Docker engine, or with --no-images)"]
    lines += [f"  {mb(i['size'])}  {i['tag']}  ({i['name']})" for i in m["images"]]
    lines += ["", f"notebooks: {len(m['notebooks'])} files, {mb(m['sizes']['notebooks']).strip()}"]
    lines += [f"  {n}" for n in m["notebooks"]]
    lines += ["", "missing: " + ("; ".join(m["missing"]) or "nothing"), "",
              "use it: make lab BUNDLE=path   make test BUNDLE=path   (no index, no registry)",
              ("  or:   python appcoup_lib/bundle.py install BUNDLE VENV [--editable .]; "
               "python appcoup_lib/bundle.py load BUNDLE")]
    return "\n".join(lines) + "\n"


def make_bundle(out: str | Path = DEFAULT_OUT, *, python: str | None = None, project: str | Path | None = None,
                images: bool = True, extra_images: list[str] | None = None, extras: str = "dev") -> dict[str, Any]:
    """Write the bundle to ``out``; return its manifest.

    Args:
        out: the archive to write (``.tar.gz``).
        python: the interpreter the wheels are for (default: this one); its version and platform
            are the bundle's target, recorded in the manifest.
        project: the course's checkout (default: the one this file is in).
        images: save the course's images (needs a Docker engine; built offline first when missing).
        extra_images: more tags to save (also ``$APPCOUP_BUNDLE_EXTRA_IMAGES``): the single-user image.
        extras: the extras installed with the course (``dev``: what ``make venv`` installs).
    """
    t0 = time.monotonic()
    python = python or sys.executable
    project = Path(project or _project_root()).resolve()
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    info = _python_info(python)
    missing: list[str] = []
    with tempfile.TemporaryDirectory(prefix="appcoup-bundle-", dir=out.parent) as tmp:
        top = Path(tmp) / ROOT_DIR
        (top / "wheels").mkdir(parents=True)
        _wheels(python, project, top / "wheels", extras)
        image_rows: list[dict[str, Any]] = []
        extra = list(extra_images or []) + os.environ.get(ENV_EXTRA_IMAGES, "").split()
        if images and engine_answers():
            tags = course_images(build=True)
            tags.update({f"extra:{t}": t for t in extra})
            for name, tag in tags.items():
                facts = _image_facts(tag)
                if facts is None:
                    raise RuntimeError(f"image {tag} ({name}) is not on the engine")
                image_rows.append({"name": name, "tag": tag, **facts})
            (top / "images").mkdir()
            _save_images(sorted(set(tags.values())), top / IMAGES_TAR)
        elif images:
            missing.append("images: no Docker engine answered when the bundle was made")
        else:
            missing.append("images: left out on purpose (--no-images)")
        if not extra:
            missing.append(f"the JupyterHub single-user image: not built yet (when it is, add it to "
                           f"appcoup_lib.images.SPECS or name its tag in ${ENV_EXTRA_IMAGES})")
        shutil.copytree(project / "notebooks", top / "notebooks",
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        wheels = [{"file": p.name, "size": p.stat().st_size, "sha256": _sha256(p)}
                  for p in sorted((top / "wheels").iterdir())]
        nbs = sorted(str(p.relative_to(top)) for p in (top / "notebooks").rglob("*") if p.is_file())
        course = [w["file"] for w in wheels if w["file"].startswith("appcoup-")]
        manifest: dict[str, Any] = {
            "format": 1,
            "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
            "made_on": f"{platform.node()} ({platform.system()} {platform.machine()})",
            "appcoup_version": course[0].split("-")[1] if course else "?",
            "python": info, "extras": extras,
            "wheels": wheels,
            "images": image_rows,
            "images_archive": IMAGES_TAR if image_rows else None,
            "bases": {r["name"][len("base-"):]: r["tag"] for r in image_rows if r["name"].startswith("base-")},
            "notebooks": nbs,
            "sizes": {"wheels": sum(w["size"] for w in wheels),
                      "images": (top / IMAGES_TAR).stat().st_size if image_rows else 0,
                      "notebooks": sum((top / n).stat().st_size for n in nbs)},
            "missing": missing,
        }
        (top / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
        (top / "MANIFEST.txt").write_text(_manifest_text(manifest))
        _say(f"writing {out}")
        part = out.with_name(out.name + ".part")
        with open(part, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz, \
                tarfile.open(fileobj=gz, mode="w") as tar:
            for name in ("MANIFEST.json", "MANIFEST.txt"):  # first: `show` reads only the start
                tar.add(top / name, arcname=f"{ROOT_DIR}/{name}")
            for sub in ("notebooks", "wheels", "images"):
                if (top / sub).exists():
                    tar.add(top / sub, arcname=f"{ROOT_DIR}/{sub}")
        part.replace(out)
    manifest["sizes"]["archive"] = out.stat().st_size
    _say(f"{out}: {out.stat().st_size / 1e6:.1f} MB in {time.monotonic() - t0:.0f} s "
         f"({len(manifest['wheels'])} wheels, {len(manifest['images'])} images, {len(manifest['notebooks'])} "
         f"notebook files)")
    return manifest


# -- read ----------------------------------------------------------------------------------------
def _read_member(bundle: str | Path, name: str) -> bytes:
    """One small member of ``bundle``, read as the archive streams by (the manifest comes first)."""
    with tarfile.open(bundle, "r|gz") as tar:
        for m in tar:
            if m.name == f"{ROOT_DIR}/{name}":
                f = tar.extractfile(m)
                assert f is not None
                return f.read()
    raise KeyError(f"{bundle} has no {name}: is it an appcoup bundle?")


def manifest(bundle: str | Path) -> dict[str, Any]:
    """The manifest of ``bundle`` (read without unpacking the rest)."""
    return json.loads(_read_member(bundle, "MANIFEST.json"))


def _extract(bundle: str | Path, prefix: str, dest: Path) -> Path:
    """Unpack the members of ``bundle`` under ``appcoup-bundle/<prefix>`` into ``dest``; return that dir."""
    start = f"{ROOT_DIR}/{prefix}"
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(bundle, "r|gz") as tar:  # one pass as the archive streams by
        for m in tar:
            if not (m.name == start or m.name.startswith(start + "/")):
                continue
            # our own archive, but still: no absolute paths, no links out
            if m.name.startswith("/") or ".." in Path(m.name).parts or m.issym() or m.islnk():
                raise RuntimeError(f"refusing the archive member {m.name!r}")
            tar.extract(m, dest, **safe)  # type: ignore[arg-type]
    return dest / ROOT_DIR / prefix


def extract_notebooks(bundle: str | Path, dest: str | Path) -> Path:
    """Unpack the bundle's ``notebooks/`` under ``dest``; return the notebooks directory."""
    return _extract(bundle, "notebooks", Path(dest))


# -- install -------------------------------------------------------------------------------------
def install_from(bundle: str | Path, venv: str | Path, *, editable: str | Path | None = None,
                 python: str | None = None, extras: str | None = None, quiet: bool = True) -> None:
    """Install the course into ``venv`` from ``bundle`` alone: ``pip install --no-index --find-links``.

    ``venv`` is created (with ``python``, default this interpreter) when it does not exist.
    ``editable``: a checkout to install in development mode (what ``make venv`` does), built with
    the bundle's hatchling; else the course's own wheel from the bundle is installed.
    """
    m = manifest(bundle)
    venv = Path(venv)
    vpy = venv / "bin" / "python"
    if not vpy.exists():
        subprocess.run([python or sys.executable, "-m", "venv", str(venv)], check=True)
    have = _python_info(str(vpy))
    want = m["python"]
    if (have["tag"], have["platform"]) != (want["tag"], want["platform"]):
        raise RuntimeError(f"the bundle's wheels are for {want['tag']} on {want['platform']}, this venv's Python is "
                           f"{have['tag']} on {have['platform']}: make the bundle with this Python "
                           f"(python -m appcoup_lib.bundle make --python PATH) or use a matching one")
    extras = m.get("extras", "dev") if extras is None else extras
    suffix = f"[{extras}]" if extras else ""
    target = f"{Path(editable).resolve()}{suffix}" if editable else f"appcoup{suffix}=={m['appcoup_version']}"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"}
    env.pop("PIP_INDEX_URL", None)
    env.pop("PIP_EXTRA_INDEX_URL", None)
    with tempfile.TemporaryDirectory(prefix="appcoup-wheels-") as tmp:
        wheels = _extract(bundle, "wheels", Path(tmp))
        cmd = [str(vpy), "-m", "pip", "install", *(["--quiet"] if quiet else []), "--no-index",
               "--find-links", str(wheels), *(["-e", target] if editable else [target])]
        _say("install: " + " ".join(cmd[1:]))
        subprocess.run(cmd, check=True, env=env)


# -- load ----------------------------------------------------------------------------------------
def load_images(bundle: str | Path, *, retag: bool = True) -> list[str]:
    """``docker load`` the bundle's images into the engine that answers here; return their tags.

    With ``retag`` (and appcoup importable here), the loaded offline bases also get the tags this
    machine's ``appcoup images`` names them by (their tags hash the machine's busybox and Debian
    release), and any course image whose tag differs here is built on them, offline, in seconds
    (the course's Dockerfiles only copy files onto the base).
    """
    m = manifest(bundle)
    if not m.get("images_archive"):
        _say("images: this bundle has none (made without a Docker engine)")
        return []
    if not engine_answers():
        _say("images: no Docker engine answers here, nothing loaded (the local runtime needs none); "
             f"start the engine and run: python appcoup_lib/bundle.py load {bundle}")
        return []
    t0 = time.monotonic()
    with tarfile.open(bundle, "r|gz") as tar:
        member = next((x for x in tar if x.name == f"{ROOT_DIR}/{m['images_archive']}"), None)
        f = tar.extractfile(member) if member else None
        if f is None:
            raise RuntimeError(f"{bundle} has no {m['images_archive']}")
        cli = _docker_cli()
        if cli:
            proc = subprocess.Popen([cli, "load", "--quiet"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
            assert proc.stdin is not None
            shutil.copyfileobj(f, proc.stdin, 1 << 20)
            proc.stdin.close()
            if proc.wait() != 0:
                raise RuntimeError("docker load failed")
        else:
            import docker

            docker.from_env().images.load(io.BufferedReader(f))  # type: ignore[arg-type]
    tags = [i["tag"] for i in m["images"]]
    _say(f"images: loaded {len(tags)} in {time.monotonic() - t0:.0f} s")
    if retag:
        _retag_for_here(m)
    return tags


def _retag_for_here(m: dict[str, Any]) -> None:
    cli = _docker_cli()
    try:
        from appcoup_lib import images
    except Exception as e:  # noqa: BLE001 - appcoup not installed yet, or broken: the loaded tags stay
        _say(f"images: loaded under the bundle's tags only (appcoup_lib.images not importable: {e})")
        return
    for kind, tag in m.get("bases", {}).items():
        here = images.local_base_tag(kind)
        if cli and here != tag and _image_facts(here) is None:
            subprocess.run([cli, "tag", tag, here], check=True)
            _say(f"images: {tag} is {here} on this machine")
    try:
        images.ensure(list(getattr(images, "SPECS", None) or images.NAMES), progress=False)
    except Exception as e:  # noqa: BLE001 - the next `up` builds (or says) what is missing
        _say(f"images: could not check the course's tags here ({e})")


# -- command line --------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m appcoup_lib.bundle", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="write the bundle (needs the network, and a Docker engine for the images)")
    mk.add_argument("--out", default=DEFAULT_OUT)
    mk.add_argument("--python", help="the interpreter the wheels are for (default: this one)")
    mk.add_argument("--no-images", action="store_true", help="wheels and notebooks only")
    mk.add_argument("--image", action="append", default=[], help="one more image tag to save (repeatable)")
    ins = sub.add_parser("install", help="install the course into a venv from the bundle, no index")
    ins.add_argument("bundle")
    ins.add_argument("venv")
    ins.add_argument("--editable", metavar="CHECKOUT", help="pip install -e CHECKOUT[dev] (what make venv does)")
    ins.add_argument("--python", help="the interpreter for a new venv (default: this one)")
    ld = sub.add_parser("load", help="docker load the bundle's images, when an engine answers")
    ld.add_argument("bundle")
    ld.add_argument("--no-retag", action="store_true")
    nb = sub.add_parser("notebooks", help="unpack the bundle's notebooks/ into DEST")
    nb.add_argument("bundle")
    nb.add_argument("dest")
    sh = sub.add_parser("show", help="print the bundle's MANIFEST.txt")
    sh.add_argument("bundle")
    args = p.parse_args(argv)
    try:
        if args.cmd == "make":
            m = make_bundle(args.out, python=args.python, images=not args.no_images, extra_images=args.image)
            print(f"{args.out}: {m['sizes']['archive'] / 1e6:.1f} MB")
        elif args.cmd == "install":
            install_from(args.bundle, args.venv, editable=args.editable, python=args.python)
        elif args.cmd == "load":
            load_images(args.bundle, retag=not args.no_retag)
        elif args.cmd == "notebooks":
            print(extract_notebooks(args.bundle, args.dest))
        else:
            sys.stdout.write(_read_member(args.bundle, "MANIFEST.txt").decode())
    except (RuntimeError, subprocess.CalledProcessError, OSError, KeyError) as e:
        print(f"bundle {args.cmd}: {e}", file=sys.stderr)
        return 1
    return 0


__all__ = ["DEFAULT_OUT", "TOOLS", "course_images", "engine_answers", "extract_notebooks", "install_from",
           "load_images", "main", "make_bundle", "manifest"]

if __name__ == "__main__":
    if not __package__:  # run as a file (python appcoup_lib/bundle.py): import appcoup_lib from its checkout
        sys.path[0] = str(_project_root())
    sys.exit(main())
