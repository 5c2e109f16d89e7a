"""The retry rule of the method, shared by the fast and the reference path.

A draw can fail (V_atomic unseen, cell too large, spglib finds another space group, atoms too
close): the number of unique elements is then kept and the rest drawn again, up to
`tries_per_n_elements` failures, after which the number of elements is drawn again too. A draw with
too many sites in the asymmetric unit is drawn again without counting as a failure (the original's
rule). `max_attempts_per_crystal` stops statistics and limits that admit no crystal from looping
forever.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

from xrdgen.config import GenerationConfig
from xrdgen.crystal import Crystal
from xrdgen.generation.attempts import TOO_MANY_SITES, Attempt


def retry_until_accepted(
    spacegroup: int,
    draw_n_elements: Callable[[], int],
    attempt: Callable[[int, Attempt], Optional[Crystal]],
    config: GenerationConfig,
    attempts: Optional[list[Attempt]],
) -> Crystal:
    """The first accepted crystal of `spacegroup` by the retry rule.

    `draw_n_elements()` draws the number of unique elements; `attempt(n_elements, record)` runs the
    remaining steps once and returns a crystal or None (with `record.outcome` set). Every attempt
    is appended to `attempts` unless it is None. RuntimeError after `max_attempts_per_crystal`.
    """
    n_attempts = 0
    while True:
        n_elements = draw_n_elements()
        failures = 0
        drawn = True
        while failures < config.tries_per_n_elements:
            record = Attempt(spacegroup, n_elements, drawn)
            drawn = False
            if attempts is not None:
                attempts.append(record)
            n_attempts += 1
            if n_attempts > config.max_attempts_per_crystal:
                raise RuntimeError(
                    f"space group {spacegroup}: no crystal in {n_attempts - 1} attempts "
                    f"(statistics and generation limits admit none?)"
                )
            crystal = attempt(n_elements, record)
            if crystal is not None:
                return crystal
            if record.outcome != TOO_MANY_SITES:
                failures += 1
