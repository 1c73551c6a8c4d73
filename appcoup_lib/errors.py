"""Every error appcoup raises: catch :class:`AppcoupError`.

Each message says what failed, why, and the one thing to do next.
"""

from __future__ import annotations


class AppcoupError(Exception):
    """Base class of every error the library raises. Catch this."""

    def __init__(self, what: str, *, why: str = "", fix: str = "") -> None:
        self.what, self.why, self.fix = what, why, fix
        parts = [what]
        if why:
            parts.append(f"Why: {why}")
        if fix:
            parts.append(f"What to do: {fix}")
        super().__init__("\n".join(parts))


class InvalidInput(AppcoupError, ValueError):
    """An argument appcoup cannot use (a name, a port, an interval ...); nothing was started."""


class UnknownScenario(AppcoupError, ValueError):
    """A scenario name that does not exist."""


class UnknownRuntime(AppcoupError, ValueError):
    """A runtime name that does not exist."""


class NotSupported(AppcoupError):
    """The scenario exists but this runtime cannot run it (an "n/a" cell of the design)."""


class RuntimeUnavailable(AppcoupError):
    """The runtime exists but is not usable on this machine (no daemon, no cluster, ...)."""


class PortInUse(AppcoupError):
    """The port the app should publish is taken."""

    def __init__(self, port: int, holder: str) -> None:
        self.port, self.holder = port, holder
        super().__init__(
            f"Port {port} is already in use by {holder}.",
            why="two programs cannot listen on the same port",
            fix="stop that program, or pass another port (port=0 picks a free one, e.g. `appcoup up SCENARIO --port 0`)",
        )


class AlreadyUp(AppcoupError):
    """An app of that name already runs on that runtime."""


class NotFound(AppcoupError):
    """No app, container or program by that name."""


class NotReady(AppcoupError):
    """The app did not serve /data in time."""


class BuildError(AppcoupError):
    """An image failed to build; carries the failing step and its log."""

    def __init__(self, image: str, step: str, log: str, *, fix: str = "") -> None:
        self.image, self.step, self.log = image, step, log
        tail = "\n".join(log.strip().splitlines()[-15:])
        super().__init__(
            f"Building image {image!r} failed at step: {step}",
            why=f"the build log ends with:\n{tail}",
            fix=fix or "read the log above; fix the Dockerfile or the files it copies, then build again",
        )
