"""The runtime registry: ``local`` (processes), ``docker`` (an engine), ``kubernetes`` (a cluster)."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from ..errors import RuntimeUnavailable, UnknownRuntime
from .base import App, Availability, Event, Runtime, Table, registry

# Each module registers its class on import; none imports an SDK at import time.
_MODULES = {"local": "local", "docker": "docker", "kubernetes": "kubernetes"}
# "auto" prefers the richest runtime that answers; local always works.
AUTO_ORDER = ("kubernetes", "docker", "local")


def runtime_class(name: str) -> type[Runtime]:
    if name not in _MODULES:
        raise UnknownRuntime(f"There is no runtime {name!r}.",
                             fix=f"use one of: auto, {', '.join(_MODULES)}")
    try:
        importlib.import_module(f"{__name__}.{_MODULES[name]}")
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith(__name__):
            raise RuntimeUnavailable(f"The {name} runtime is not part of this version of appcoup yet.",
                                     fix="use runtime('local')") from None
        raise
    return registry()[name]


def availability(name: str) -> Availability:
    try:
        return runtime_class(name).availability()
    except RuntimeUnavailable as e:
        return Availability(name, False, e.what, e.fix)


def runtime(name: str = "auto", **options: Any) -> Runtime:
    """The runtime ``name``; ``"auto"`` picks the best usable one (local at worst).

    ``options`` go to the runtime's class, e.g. ``runtime("kubernetes", context="kind-a", peer="kind-b")``.
    A runtime that is not usable here raises :class:`RuntimeUnavailable` with the one step
    that would make it usable.
    """
    if name == "auto":
        for cand in AUTO_ORDER:
            if availability(cand).ok:
                return _made(runtime_class(cand), options)
        return runtime_class("local")()
    cls = runtime_class(name)
    if options:
        return cls(**options)  # its own context may answer where the default one does not
    av = cls.availability()
    if not av.ok:
        raise RuntimeUnavailable(f"The {name} runtime is not usable here: {av.detail}", fix=av.fix)
    return cls()


def _made(cls: type[Runtime], options: dict[str, Any]) -> Runtime:
    """``cls`` made with the ``options`` its constructor takes (``auto`` may land on one without them)."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return cls(**options)
    return cls(**{k: v for k, v in options.items() if k in params})


def names() -> tuple[str, ...]:
    return tuple(_MODULES)


__all__ = [
    "App",
    "Availability",
    "Event",
    "Runtime",
    "Table",
    "availability",
    "names",
    "runtime",
    "runtime_class",
    "runtime_for",
]


def runtime_for(scenario: str, name: str = "auto") -> Runtime:
    """The runtime to run ``scenario`` on in a notebook.

    ``"auto"`` picks the best usable runtime that supports the scenario. An explicit runtime that
    cannot run this scenario (an "n/a" cell: `separate` on Kubernetes, say) is replaced by local,
    with one line saying why; a runtime that is not usable here raises with the step that fixes it.
    """
    from ..scenarios import scenario as get_scenario

    sc = get_scenario(scenario)
    if name == "auto":
        for cand in AUTO_ORDER:
            if cand in sc.runtimes and availability(cand).ok:
                return runtime_class(cand)()
        return runtime_class("local")()
    if name not in sc.runtimes:
        runtime_class(name)  # an unknown name still lists the valid ones
        if "local" not in sc.runtimes:
            sc.check_runtime(name)
        print(f"{sc.name!r} does not run on {name}: {sc.unsupported[name]}. This part runs on local instead.")
        return runtime("local")
    return runtime(name)
