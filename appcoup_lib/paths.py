"""Where things are: the program files in ``images/`` and appcoup's state directory."""

from __future__ import annotations

import os
from pathlib import Path


def images_dir() -> Path:
    """The ``images/`` tree: beside the package in a checkout, inside it in a wheel."""
    here = Path(__file__).resolve().parent
    for cand in (here.parent / "images", here / "images"):
        if (cand / "generator" / "generator.sh").exists():
            return cand
    raise FileNotFoundError("appcoup's images/ directory is missing; reinstall appcoup (pip install -e .)")


def state_dir() -> Path:
    """Per-user state (``$APPCOUP_STATE``, default ``~/.cache/appcoup``)."""
    base = os.environ.get("APPCOUP_STATE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "appcoup")
    p = Path(base)
    p.mkdir(parents=True, exist_ok=True)
    return p


def notebooks_dir() -> Path:
    """The course's ``notebooks/`` directory (beside the package in a checkout)."""
    here = Path(__file__).resolve().parent
    for cand in (here.parent / "notebooks", here / "notebooks"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError("appcoup's notebooks/ directory is missing; run from a checkout of the course")


def manifests_dir() -> Path:
    """The Kubernetes ``manifests/`` tree: beside the package in a checkout, inside it in a wheel."""
    here = Path(__file__).resolve().parent
    for cand in (here.parent / "manifests", here / "manifests"):
        if (cand / "namespace.yaml").exists():
            return cand
    raise FileNotFoundError("appcoup's manifests/ directory is missing; reinstall appcoup (pip install -e .)")
