"""What a learner may pass in: app names, ports, intervals, addresses, supervisors; and who the learner is.

Every check raises :class:`~appcoup_lib.errors.InvalidInput` saying what is wrong and what to pass
instead, before anything starts. At the bottom of the library: the CLI and the runtimes use it.
"""

from __future__ import annotations

import getpass
import hashlib
import math
import os
import re
from typing import Any

from .errors import InvalidInput
from .labels import NAME_MAX, PREFIX

DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # a DNS-1123 label: what names must be


def learner() -> str:
    """Who is running the course here, as a DNS-1123 label (names and labels are per learner).

    ``$APPCOUP_LEARNER``, else ``$JUPYTERHUB_USER`` (every JupyterHub user may be ``jovyan``),
    else the OS user.
    """
    raw = os.environ.get("APPCOUP_LEARNER") or os.environ.get("JUPYTERHUB_USER") or ""
    if not raw:
        try:
            raw = getpass.getuser()
        except Exception:  # noqa: BLE001 - no user name (a container with an arbitrary UID)
            raw = f"uid{os.getuid()}"
    label = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    if len(label) > 16 or label != raw.lower():
        # Keep it readable and unique: a short prefix plus a hash of the original.
        label = f"{label[:10].strip('-') or 'u'}-{hashlib.sha256(raw.encode()).hexdigest()[:5]}"
    return label or "learner"


def default_name(scenario: str) -> str:
    """The app name used when none is given: ``appcoup-<learner>-<scenario>``."""
    return check_name(f"{PREFIX}{learner()}-{scenario}")


def check_name(name: str) -> str:
    """Refuse an app name that is not a DNS-1123 label (it becomes paths, container and object names)."""
    if not isinstance(name, str) or len(name) > NAME_MAX or not DNS1123.match(name):
        raise InvalidInput(
            f"{name!r} cannot be an app name.",
            why=f"an app name becomes directory, container and Kubernetes names: at most {NAME_MAX} "
                "characters, lower-case letters, digits and '-', starting and ending with a letter or digit",
            fix="pass a name like name='appcoup-mine', or leave name out for the default",
        )
    return name


def check_port(port: Any) -> int:
    """A TCP port 0..65535 (0: any free port)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidInput(f"{port!r} is not a port.", why="a TCP port is a whole number from 1 to 65535",
                           fix="pass port=8000, or port=0 to pick any free port")
    return port


def check_interval(interval: Any) -> float:
    """Seconds between two numbers: a finite number > 0 (and not absurdly large)."""
    try:
        value = float(interval)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(interval, bool) or not math.isfinite(value) or value <= 0 or value > 3600:
        raise InvalidInput(f"{interval!r} is not a usable interval.",
                           why="the generator waits this many seconds between two numbers: "
                               "a finite number above 0 and at most 3600",
                           fix="pass interval=0.5 (or 2, the default)")
    return value


def check_address(address: Any) -> str:
    """An IPv4 address to listen on: ``127.0.0.1`` (the default: this machine only) or another."""
    import ipaddress

    try:
        ip = ipaddress.IPv4Address(address) if isinstance(address, str) else None
    except ValueError:
        ip = None
    if ip is None:
        raise InvalidInput(f"{address!r} is not an address to listen on.",
                           why="published ports listen on one IPv4 address of this machine",
                           fix="leave it out (127.0.0.1: only this machine), or pass address='0.0.0.0' "
                               "to let other machines reach it")
    return str(ip)


def check_supervisor(supervisor: Any) -> str:
    """``naive`` (app.sh), ``init`` (app-init.sh) or ``restarting`` (app-restart.sh)."""
    if supervisor not in ("naive", "init", "restarting"):
        raise InvalidInput(f"{supervisor!r} is not a supervisor.",
                           why="single-image runs its two programs under app.sh ('naive'), app-init.sh ('init') "
                               "or app-restart.sh ('restarting')",
                           fix="pass supervisor='naive', supervisor='init' or supervisor='restarting'")
    return supervisor


__all__ = ["DNS1123", "check_address", "check_interval", "check_name", "check_port", "check_supervisor",
           "default_name", "learner"]
