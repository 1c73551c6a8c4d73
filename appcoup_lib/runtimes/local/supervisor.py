"""supervisord for the local runtime: its configuration, its control socket, and its launcher.

One supervisord per app plays the part of the container runtime. Two things keep it close to
starting the programs by hand:

* supervisord handles a child's exit on the tick after the one that reaped it, so with its stock
  one-second tick a crashed program comes back about a second later. Container runtimes react to
  an exit at once; a 0.1 s tick keeps the local runtime's restarts comparable.
* importing supervisord takes longer than starting both programs. A *launcher* process imports
  it once, ahead of time, and forks a ready supervisord for each ``up``.

Protocol of the launcher (:func:`serve`): one line on stdin per app, ``<name>\\t<config path>``;
it answers with the new supervisord's pid on stdout. It exits when stdin closes (its owner has
gone). The ``supervisor`` package is imported only there: importing this module stays cheap, and
works where supervisor is not installed (``availability()`` says so).
"""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import xmlrpc.client
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ...errors import AppcoupError
from ...labels import STOP_GRACE
from .procs import ENV_MARK, SUPERVISOR_MODULE, create_time

TICK = 0.1  # seconds: supervisord's poll timeout, so an exit is handled within a tenth of a second
# The launcher's command line. A `-c` import rather than `-m`: this module is already imported
# with its package, and `-m` would run it a second time (with a RuntimeWarning on stderr).
LAUNCHER = [sys.executable, "-c", f"from {SUPERVISOR_MODULE} import serve; serve()"]
_ENV = re.compile(r'(\w+)="([^"]*)"')


# -- the configuration file ---------------------------------------------------------------------
def sock_path(home: Path) -> Path:
    """supervisord's control socket: in the app's state directory when the path is short enough.

    A unix socket path holds at most 107 bytes; a deep home directory exceeds that, and then
    supervisord cannot start. Such a socket goes to a short per-user directory instead.
    """
    sock = home / "supervisor.sock"
    if len(os.fsencode(str(sock))) < 100:
        return sock
    short = Path(tempfile.gettempdir()) / f"appcoup-{os.getuid()}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / (hashlib.sha256(str(home).encode()).hexdigest()[:16] + ".sock")


def header(home: Path) -> list[str]:
    """The lines of ``supervisord.conf`` before the programs: socket, log, pid file, RPC, and where
    ``supervisorctl -c supervisord.conf`` finds the socket (as a learner would type it)."""
    return [
        "[unix_http_server]", f"file={sock_path(home)}", "",
        "[supervisorctl]", f"serverurl=unix://{sock_path(home)}", "",
        "[supervisord]", f"logfile={home / 'supervisord.log'}", f"pidfile={home / 'supervisord.pid'}",
        "loglevel=info", "nodaemon=true", "silent=true", "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
    ]


def program(command: str, directory: Path, env: dict[str, str], log: Path, *, autorestart: bool | str,
            startsecs: int, startretries: int | None = None) -> dict[str, str]:
    """The options of one ``[program:x]`` section, in the order supervisord's docs list them.

    ``autorestart``: True, False, or ``"unexpected"`` (restart after an exit code not in ``exitcodes``).
    """
    restart = autorestart if isinstance(autorestart, str) else ("true" if autorestart else "false")
    opts = {"command": command, "directory": str(directory), "environment": env_str(env),
            "autostart": "true", "autorestart": restart,
            "startsecs": str(startsecs)}
    if startretries is not None:
        opts["startretries"] = str(startretries)
    # A container stops as a whole: supervisord signals its process group, not only its main program.
    opts.update({"stopasgroup": "true", "killasgroup": "true", "stopwaitsecs": str(STOP_GRACE),
                 "stdout_logfile": str(log), "redirect_stderr": "true", "stdout_logfile_maxbytes": "0"})
    return opts


def quote(arg: str) -> str:
    """One word of a ``command=`` line, quoted when supervisord's shlex would split it."""
    return f'"{arg}"' if any(ch in arg for ch in " \t\"'") else arg


def env_str(env: dict[str, str]) -> str:
    """An ``environment=`` value: ``K="v",K2="v2"``."""
    return ",".join(f'{k}="{v}"' for k, v in env.items())


def parse_env(value: str) -> dict[str, str]:
    """The variables of an ``environment=`` value (the inverse of :func:`env_str`)."""
    return dict(_ENV.findall(value))


def read_conf(home: Path) -> configparser.RawConfigParser:
    """``supervisord.conf`` of the app in ``home``, to edit (option names keep their case)."""
    cp = configparser.RawConfigParser(interpolation=None, strict=False)
    cp.optionxform = str  # type: ignore[assignment, method-assign]
    cp.read(home / "supervisord.conf")
    return cp


def write_conf(home: Path, cp: configparser.RawConfigParser) -> None:
    """Replace ``supervisord.conf`` at once: supervisord never reads half a file."""
    tmp = home / "supervisord.conf.new"
    with open(tmp, "w") as f:
        cp.write(f)
    os.replace(tmp, home / "supervisord.conf")


# -- talking to a running supervisord -----------------------------------------------------------
def rpc(home: Path) -> Any:
    """An XML-RPC proxy to the supervisord of the app in ``home`` (``rpc(home).supervisor.X()``)."""
    from supervisor.xmlrpc import SupervisorTransport

    return xmlrpc.client.ServerProxy("http://127.0.0.1",
                                     transport=SupervisorTransport(None, None, f"unix://{sock_path(home)}"))


def apply(home: Path, restart: Iterable[str] = (), add: Iterable[str] = (),
          remove: Iterable[str] = ()) -> None:
    """``supervisorctl update`` for the named programs: re-read the file, then act on them."""
    restart, add, remove = list(restart), list(add), list(remove)
    server = rpc(home).supervisor
    server.reloadConfig()
    for name in [*restart, *remove]:
        try:
            server.stopProcessGroup(name)
        except Exception:  # noqa: BLE001, S110 - not running: nothing to stop
            pass
        try:
            server.removeProcessGroup(name)
        except Exception:  # noqa: BLE001, S110 - not there
            pass
    for name in [*restart, *add]:
        server.addProcessGroup(name)  # autostart: it is spawned at once


# -- launching one -------------------------------------------------------------------------------
# The launcher of this Python process (one for all apps; started again when it has gone).
_launcher: subprocess.Popen[str] | None = None


def warm_up() -> None:
    """Start the launcher that forks supervisords (it imports supervisor once, ahead of time)."""
    global _launcher
    if _launcher is None or _launcher.poll() is not None:
        _launcher = subprocess.Popen(LAUNCHER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     start_new_session=True)


def launch(name: str, conf: Path) -> tuple[int, float]:
    """Fork a supervisord for app ``name`` from the launcher; return its pid and start time."""
    global _launcher
    warm_up()
    assert _launcher is not None and _launcher.stdin is not None and _launcher.stdout is not None
    try:
        _launcher.stdin.write(f"{name}\t{conf}\n")
        _launcher.stdin.flush()
        line = _launcher.stdout.readline()
    except (BrokenPipeError, OSError):
        line = ""
    except BaseException:
        # Interrupted (Ctrl-C) between asking and reading the answer: the next answer would be
        # out of step, so this launcher goes (the next up starts another).
        _launcher.kill()
        _launcher = None
        raise
    created = create_time(int(line)) if line.strip().isdigit() else None
    if created is None:
        detail = last_error(conf.parent, 300)
        raise AppcoupError("Could not start supervisord for the local runtime.",
                           why=f"its launcher process exited, or supervisord died at once {detail}".strip(),
                           fix="run `appcoup clean`, then try again")
    return int(line), created


def last_error(home: Path, chars: int) -> str:
    """The end of what the app's supervisord wrote to stderr (why it died), or ''."""
    err = home / "supervisord.err"
    return err.read_text(errors="replace").strip()[-chars:] if err.exists() else ""


# -- the launcher process itself -----------------------------------------------------------------
def _short_poll(poll: Any) -> Any:
    first = [True]
    again = [False]  # a child exited: the next poll returns at once, so the restart is not a tick late

    def wrapped(self: Any, timeout: float) -> Any:
        # The first poll returns at once, so autostart programs spawn without waiting a tick.
        if first[0] or again[0]:
            first[0] = again[0] = False
            timeout = 0
        if _WAKE[0] >= 0 and _WAKE[0] not in self.readables:
            self.register_readable(_WAKE[0])
        readable, writable = poll(self, min(timeout, TICK))
        if _WAKE[0] in readable:
            # A signal (a child's SIGCHLD) woke us: supervisord reaps it in this round and can
            # restart it in the next one, which must not wait. Our pipe is not supervisord's: hidden.
            try:
                while os.read(_WAKE[0], 512):
                    pass
            except BlockingIOError:
                pass
            readable = [fd for fd in readable if fd != _WAKE[0]]
            again[0] = True
        return readable, writable

    return wrapped


# The read end of the pipe Python writes a byte to at every signal (``signal.set_wakeup_fd``):
# with it, a program's exit wakes supervisord's poll at once instead of at the next tick.
_WAKE = [-1]


def _wake_on_signals() -> None:
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    _WAKE[0] = r


def _patch_tick() -> None:
    from supervisor import poller

    for cls in (getattr(poller, n, None) for n in ("SelectPoller", "PollPoller", "KQueuePoller")):
        if cls is not None:
            cls.poll = _short_poll(cls.poll)


def serve() -> None:
    """The launcher's loop (run in its own process, see :data:`LAUNCHER`): fork one supervisord a line."""
    from supervisor import supervisord

    _patch_tick()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps our finished children
    for line in sys.stdin:
        name, conf = line.rstrip("\n").split("\t")
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setsid()
            os.environ[ENV_MARK] = name
            os.chdir(os.path.dirname(conf))
            devnull = os.open(os.devnull, os.O_RDWR)
            err = os.open(os.path.join(os.path.dirname(conf), "supervisord.err"),
                          os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            os.dup2(err, 2)
            _wake_on_signals()
            try:
                supervisord.main(["-c", conf])
            finally:
                os._exit(0)
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()


__all__ = ["LAUNCHER", "STOP_GRACE", "TICK", "apply", "env_str", "header", "last_error", "launch",
           "parse_env", "program", "quote", "read_conf", "rpc", "serve", "sock_path", "warm_up", "write_conf"]
