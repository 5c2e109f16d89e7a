"""What one generation attempt drew and how it ended: shared by both paths, read by tests and the CLI.

Why record attempts: the statistics say what is *drawn* (step 1-4 of seed S1); the retry rule then
rejects some draws (too many sites, too large, wrong space group), which tilts the *accepted*
crystals slightly towards what passes. Keeping every attempt lets a test compare the raw draws with
the statistics exactly, the accepted ones between the two paths, and lets a run report its
rejection rates.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# How an attempt ended (the retry rule of seed S1).
ACCEPTED = "accepted"
TOO_MANY_SITES = "too_many_sites"  # > max_atoms_asymmetric_unit: drawn again, not counted as a failure
V_ATOMIC_UNSEEN = "v_atomic_unseen"  # V_atomic above the largest in the statistics: failure
TOO_LARGE = "too_large"  # cell volume above max_volume: failure
MISMATCH = "spacegroup_mismatch"  # spglib finds another space group: failure
TOO_CLOSE = "too_close"  # optional distance check: failure
BUILD_ERROR = "build_error"  # the reference path's PyXtal objects refused the draw: failure


@dataclass
class Attempt:
    """One pass through steps 2-8 for a fixed space group."""

    spacegroup: int
    n_elements: int  # the drawn number of unique elements (step 2)
    n_elements_drawn: bool  # True when step 2 was (re)drawn for this attempt, False when kept after a failure
    elements: list[str] = field(default_factory=list)  # element of each placed site (step 3-4)
    wyckoffs: list[str] = field(default_factory=list)  # Wyckoff name of each placed site (step 4)
    wyckoff_draws: list[str] = field(default_factory=list)  # every Wyckoff draw, collisions included
    outcome: str = ""
    found_spacegroup: int = 0  # spglib's answer when it was asked


def outcome_counts(attempts: list[Attempt]) -> Counter:
    """How many attempts ended each way."""
    return Counter(a.outcome for a in attempts)


def retry_until_accepted(spacegroup: int, draw_n_elements, attempt, config, attempts: list | None):
    """The retry rule of seed S1, shared by both paths.

    `draw_n_elements()` is step 2; `attempt(n_elements, record)` runs steps 3-8 once and returns a
    crystal or None (with `record.outcome` set). The number of elements is kept while attempts fail
    and drawn again after `config.tries_per_n_elements` failures; too many sites is drawn again
    without counting as a failure (the original's rule). `max_attempts_per_crystal` stops statistics
    and limits that admit no crystal from looping forever.
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
