"""Start supervisord for the local runtime: with a short tick, and from a pre-warmed process.

Two things keep the local runtime close to starting the programs by hand:

* supervisord handles a child's exit on the tick after the one that reaped it, so with its stock
  one-second tick a crashed program comes back about a second later. Container runtimes react to
  an exit at once; a 0.1 s tick keeps the local runtime's restarts comparable.
* importing supervisord takes longer than starting both programs. A *launcher* process imports
  it once, ahead of time, and forks a ready supervisord for each ``up``.

Protocol of the launcher: one line on stdin per app, ``<name>\\t<config path>``; it answers with
the new supervisord's pid on stdout. It exits when stdin closes (its owner has gone).
"""

from __future__ import annotations

import os
import signal
import sys

from supervisor import poller, supervisord

TICK = 0.1
ENV_MARK = "APPCOUP_APP"


def _short(poll):  # type: ignore[no-untyped-def]
    first = [True]

    def wrapped(self, timeout):  # type: ignore[no-untyped-def]
        # The first poll returns at once, so autostart programs spawn without waiting a tick.
        if first[0]:
            first[0] = False
            return poll(self, 0)
        return poll(self, min(timeout, TICK))

    return wrapped


for _cls in (getattr(poller, n, None) for n in ("SelectPoller", "PollPoller", "KQueuePoller")):
    if _cls is not None:
        _cls.poll = _short(_cls.poll)


def _serve() -> None:
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
            try:
                supervisord.main(["-c", conf])
            finally:
                os._exit(0)
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--launcher"]:
        _serve()
    else:
        supervisord.main()
