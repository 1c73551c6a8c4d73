"""The local runtime: every container a plain process, one supervisord per app.

- :mod:`.runtime`: :class:`LocalRuntime` (up, attach, running, clean); registered as ``"local"``.
- :mod:`.app`: :class:`LocalApp`, what ``up`` returns; :mod:`.scaling` its scale/rollout/recreate
  hooks, :mod:`.events` its timeline.
- :mod:`.supervisor`: supervisord's configuration, control socket and launcher process;
  :mod:`.procs`: which processes are ours (start times, marks), strays, port holders.
"""

from __future__ import annotations

from .app import LocalApp
from .procs import ENV_LEARNER, ENV_MARK, check_port, kill_all, port_holder, strays
from .runtime import LocalRuntime, state_root
from .supervisor import STOP_GRACE

__all__ = ["ENV_LEARNER", "ENV_MARK", "STOP_GRACE", "LocalApp", "LocalRuntime", "check_port", "kill_all",
           "port_holder", "state_root", "strays"]
