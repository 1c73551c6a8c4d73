"""The docker runtime: each scenario as containers, networks and volumes on a Docker engine.

- :mod:`.runtime`: :class:`DockerRuntime` (``up``, ``attach``, ``running``, ``clean``);
- :mod:`.app`: :class:`DockerApp` (status, processes, kill, logs ...);
- :mod:`.events`: its timeline (Docker's events and appcoup's own journal);
- :mod:`.scaling`: its hooks of the shared :class:`~appcoup_lib.runtimes.scaling.Scaling` template;
- :mod:`.engine`: connecting, and the one error boundary (:func:`~.engine.errors`);
- :mod:`.crash`: SIGKILL to a container's main process, once proven to be that container's;
- :mod:`.objects`: names, labels, host ports, re-creating and removing an app's objects.

The ``docker`` SDK is imported only inside functions: the local runtime never needs it.
"""

from __future__ import annotations

from .app import STOP_GRACE, DockerApp
from .crash import KILL_IF_OURS, engine_on_this_host, pid_is_container
from .engine import connect, errors, host_address
from .objects import free_port, labels, port_holder, remove_app
from .runtime import DockerRuntime

__all__ = ["KILL_IF_OURS", "STOP_GRACE", "DockerApp", "DockerRuntime", "connect", "engine_on_this_host", "errors",
           "free_port", "host_address", "labels", "pid_is_container", "port_holder", "remove_app"]
