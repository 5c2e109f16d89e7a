"""What one generation attempt drew and how it ended: shared by both paths, read by tests and the CLI.

Why record attempts: the statistics say what is *drawn* (space-group prior, number of elements,
elements, Wyckoff occupation); the retry rule then rejects some draws (too many sites, too large,
wrong space group), which tilts the *accepted* crystals slightly towards what passes. Keeping every
attempt lets a test compare the raw draws with the statistics exactly, the accepted ones between
the two paths, and lets a run report its rejection rates.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# How an attempt ended (see `retry.py` for which outcomes count as failures).
ACCEPTED = "accepted"
TOO_MANY_SITES = "too_many_sites"  # > max_atoms_asymmetric_unit: drawn again, not counted as a failure
V_ATOMIC_UNSEEN = "v_atomic_unseen"  # V_atomic above the space group's V_atomic limit in the statistics: failure
TOO_LARGE = "too_large"  # cell volume above max_volume: failure
MISMATCH = "spacegroup_mismatch"  # spglib finds another space group: failure
TOO_CLOSE = "too_close"  # optional distance check: failure
BUILD_ERROR = "build_error"  # the reference path's PyXtal objects refused the draw: failure


@dataclass
class Attempt:
    """One pass from the number of elements to the spglib check, for a fixed space group."""

    spacegroup: int
    n_elements: int  # the drawn number of unique elements
    n_elements_drawn: bool  # True when the number of elements was (re)drawn for this attempt, False when kept after a failure
    elements: list[str] = field(default_factory=list)  # element of each placed site
    wyckoffs: list[str] = field(default_factory=list)  # Wyckoff name of each placed site (Wyckoff occupation)
    wyckoff_draws: list[str] = field(default_factory=list)  # every Wyckoff draw, collisions included
    outcome: str = ""
    found_spacegroup: int = 0  # the group the check found; 0 when the fast check rejected without naming it


def outcome_counts(attempts: list[Attempt]) -> Counter:
    """How many attempts ended each way."""
    return Counter(a.outcome for a in attempts)
