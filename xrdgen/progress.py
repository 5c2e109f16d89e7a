"""Progress of long work: done/total, rate and time left, readable on a terminal and in a log file.

On a terminal a tqdm bar; otherwise (a background run writing to a log) one line every `every_s`
seconds and at the end, instead of the thousands of carriage-return updates a bar writes to a file.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Optional, TypeVar

from tqdm import tqdm

LOG_EVERY_S = 30.0
T = TypeVar("T")


class Progress:
    """Structures done, rate and time left: a tqdm bar on a terminal, else a line every `every_s` s.

    Rate = done / elapsed; time left = (total - done) / rate.
    """

    def __init__(self, total: int, desc: str, enabled: bool = True, every_s: float = LOG_EVERY_S, unit: str = "structures"):
        self.total, self.desc, self.unit, self.every_s = total, desc, unit, every_s
        self.enabled = enabled
        self.done = 0
        self.started = self.last_line = time.monotonic()
        self.bar = tqdm(total=total, desc=desc, unit=unit[:6]) if enabled and sys.stderr.isatty() else None

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and (time.monotonic() - self.last_line >= self.every_s or self.done >= self.total):
            self.last_line = time.monotonic()
            print(self.line(), file=sys.stderr, flush=True)

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        return (
            f"{self.desc}: {self.done}/{self.total} {self.unit} ({100 * self.done / max(self.total, 1):.0f} %), "
            f"{rate:.1f}/s, {elapsed / 60:.1f} min elapsed, about {left / 60:.1f} min left"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_iter(items: Iterable[T], total: Optional[int], desc: str, unit: str, enabled: bool = True) -> Iterator[T]:
    """`items`, one `Progress` step per item (`total` None: len(items))."""
    total = len(items) if total is None else total  # type: ignore[arg-type]
    with Progress(total, desc, enabled=enabled, unit=unit) as bar:
        for item in items:
            yield item
            bar.update(1)
