"""Progress that a learner can see and CI can silence (``APPCOUP_PROGRESS=0``)."""

from __future__ import annotations

import os
import sys
from typing import Any


def enabled(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    env = os.environ.get("APPCOUP_PROGRESS")
    if env is not None:
        return env not in ("0", "false", "no", "")
    return sys.stderr.isatty() or "ipykernel" in sys.modules


class Progress:
    """A tqdm bar (``tqdm.auto``: a widget in notebooks) or nothing at all."""

    def __init__(self, desc: str, total: float | None = None, *, enabled: bool | None = None,
                 unit: str = "it") -> None:
        self._bar: Any = None
        if globals()["enabled"](enabled):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False)

    def tick(self, n: float = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def write(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(text[-60:], refresh=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
