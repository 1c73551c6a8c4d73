"""Start supervisord with a 0.1 s poll instead of its fixed one-second tick.

supervisord handles a child's exit on the tick after the one that reaped it, so with the stock
tick a crashed program comes back only about a second later. Containers runtimes react to an
exit at once; a short tick keeps the local runtime's restarts comparable.
"""

from __future__ import annotations

from supervisor import poller, supervisord

TICK = 0.1


def _short(poll):  # type: ignore[no-untyped-def]
    def wrapped(self, timeout):  # type: ignore[no-untyped-def]
        return poll(self, min(timeout, TICK))

    return wrapped


for _cls in (getattr(poller, n, None) for n in ("SelectPoller", "PollPoller", "KQueuePoller")):
    if _cls is not None:
        _cls.poll = _short(_cls.poll)

if __name__ == "__main__":
    supervisord.main()
