"""Progress bars for long command-line work (tqdm), drawn on standard error of a terminal only.

Off a terminal (a pipe, a file, cron, tests, CI) a bar prints nothing at all: tqdm's
``disable=None`` switches it off when its stream is not a TTY, so captured output is exactly what
the command printed before bars existed. On a terminal a bar

- appears only once the work has lasted ``DELAY`` seconds: quick work does not flash one;
- is cleared when it closes (``leave=False``): the command's own closing line says what was done;
- redraws at most every ``MIN_INTERVAL`` seconds, and starts no monitor thread of its own
  (``miniters=1``: every update may redraw, so the thread's catching up is never needed).

The caller counts in the bar's ``unit`` (rows, accounts) and gives ``total`` where it knows it
cheaply; an estimate is fine: a count that outruns it shows as a plain counter.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

#: Seconds of work before a bar appears.
DELAY = 0.5
#: Seconds between redraws at most.
MIN_INTERVAL = 0.2


class Bar(tqdm):
    """A tqdm bar without tqdm's monitor thread (a class-wide switch, so set on our own class)."""

    monitor_interval = 0


def bar(description: str, *, total: int | None = None, unit: str = "row", stream: TextIO | None = None,
        delay: float = DELAY) -> Bar:
    """A bar of ``description`` on ``stream`` (default standard error), off unless it is a terminal.

    Use it as a context manager, or close it: closing clears it from the screen."""
    return Bar(total=total, desc=description, unit=unit, file=stream if stream is not None else sys.stderr,
               disable=None, leave=False, delay=delay, mininterval=MIN_INTERVAL, miniters=1,
               dynamic_ncols=True, unit_scale=False)
