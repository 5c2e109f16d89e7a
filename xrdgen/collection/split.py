"""Structure-type split of a collection into a statistics part and a test part (Schopmans et al., Sec. 2.3).

Why by structure type: a random split puts near-copies of one structure type (a perovskite with
Sr and one with Ba) on both sides, so the test accuracy measures recall of known prototypes rather
than generalisation. Here no group is on both sides.

1. Group key per entry (`group_keys`):
   - "structure_type" (and "auto" when the entry has one): the CIF's `_chemical_name_structure_type`
     or the AFLOW prototype label, as given;
   - "prototype" (and "auto" otherwise): structures that pymatgen's `StructureMatcher` finds
     equivalent after anonymising the species (same prototype, any elements), closed
     transitively (`_connected_matches`). Matching is run only
     inside buckets of equal space group, anonymous formula, number of sites of the conventional
     cell and Wyckoff multiplicities (all invariants of a prototype in its conventional standard
     cell), which keeps it fast on thousands of structures without missing a match. Buckets are
     independent, so they are matched through a `map_groups` callable: `serial_map_groups` here,
     or the Ray mapper of `services.collection_reader` (buckets as Ray tasks; Ray stays out of
     `xrdgen/`). Either gives the same groups: each bucket's components depend only on its members
     in their order.
2. Groups are shuffled with `numpy.random.default_rng(seed)` and taken whole, in that order, into
   the test part while it holds less than `test_fraction` of the *structures* (the original's
   GroupShuffleSplit counted groups); the last group taken may overshoot the target.

What the split guarantees: no group on both sides; the test part holds at least `test_fraction` of
the structures and overshoots by less than one group; and no size bias: whether a group lands in
the test part depends only on the sizes of the groups shuffled before it, not on its own size, so a
large prototype (Fm-3m's rock salt, say) is held out with the same probability, about
`test_fraction`, as a singleton (tests/test_split.py counts this over many seeds).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Literal, Optional

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Lattice
from pymatgen.core.periodic_table import Element

from xrdgen.crystal import Crystal

Grouping = Literal["auto", "structure_type", "prototype"]
# buckets of candidate crystals -> per bucket, its prototype groups as lists of indices into the bucket
GroupMapper = Callable[[list[list[Crystal]]], Iterable[list[list[int]]]]


def _normalise_type(name: str) -> str:
    return " ".join(name.split()).lower()


def group_keys(entries: Sequence, grouping: Grouping = "auto", map_groups: Optional[GroupMapper] = None) -> list[str]:
    """One group key per entry; entries with equal keys must land on the same side.

    `map_groups` matches the candidate buckets of the prototype grouping (None: `serial_map_groups`).
    """
    keys: list[str | None] = [None] * len(entries)
    need_matching = []
    for i, entry in enumerate(entries):
        stype = getattr(entry, "structure_type", None)
        if grouping == "structure_type" or (grouping == "auto" and stype):
            keys[i] = f"type:{_normalise_type(stype)}" if stype else f"alone:{i}"
        else:
            need_matching.append(i)
    for group_id, members in enumerate(prototype_groups([entries[i] for i in need_matching], map_groups)):
        for member in members:
            keys[need_matching[member]] = f"prototype:{group_id}"
    return keys  # type: ignore[return-value]


def bucket_key(entry) -> tuple:
    """(space group, anonymous formula, sites, sorted Wyckoff multiplicities): equal for any two
    structures of one prototype in their conventional standard cells.

    Computed from the crystal's arrays (rows at one position are one site, as `Crystal.to_structure`
    merges them), so no pymatgen Structure is built or kept for the thousands of singletons.
    """
    crystal = entry.crystal
    positions = {tuple(row) for row in np.round(np.mod(crystal.frac_coords, 1.0), 6) % 1.0}
    amounts: dict = defaultdict(float)
    for z, occupancy in zip(crystal.numbers, crystal.occupancies):
        amounts[Element.from_Z(int(z))] += float(occupancy)
    multiplicities = tuple(sorted(int(name[:-1]) for _, name in getattr(entry, "wyckoff_sites", ()) or ()))
    return entry.spacegroup, Composition(amounts).anonymized_formula, len(positions), multiplicities


def candidate_buckets(entries: Sequence) -> list[list[int]]:
    """Entry indices per `bucket_key`, in order of first appearance (a prototype never spans two)."""
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for i, entry in enumerate(entries):
        buckets[bucket_key(entry)].append(i)
    return list(buckets.values())


def match_bucket(crystals: Sequence[Crystal]) -> list[list[int]]:
    """Prototype groups of one bucket: connected components of anonymous matching, as indices into it.

    pymatgen's default tolerances (ltol 0.2, stol 0.3, angle_tol 5°) on Niggli-reduced
    conventional standard cells (equal in size within a bucket), each reduced once here instead
    of twice in every comparison; finding primitive cells again would cost most of the time.
    """
    matcher = StructureMatcher(primitive_cell=False)
    reduced = [crystal.to_structure().get_reduced_structure() for crystal in crystals]
    return _connected_matches(reduced, list(range(len(crystals))), matcher)


def serial_map_groups(buckets: list[list[Crystal]]) -> Iterator[list[list[int]]]:
    """The in-process `GroupMapper`: `match_bucket` on each bucket, in order."""
    for bucket in buckets:
        yield match_bucket(bucket)


def prototype_groups(entries: Sequence, map_groups: Optional[GroupMapper] = None) -> list[list[int]]:
    """Indices grouped by anonymous structure matching within `bucket_key` buckets.

    Only buckets of two or more go to `map_groups`; groups come out in bucket order either way.
    """
    buckets = candidate_buckets(entries)
    to_match = [members for members in buckets if len(members) > 1]
    mapper = map_groups if map_groups is not None else serial_map_groups
    matched = iter(mapper([[entries[i].crystal for i in members] for members in to_match]))
    groups: list[list[int]] = []
    for members in buckets:
        if len(members) == 1:
            groups.append(members)
            continue
        groups.extend(sorted(members[k] for k in component) for component in next(matched))
    return groups


def lattices_compatible(s1, s2, matcher: StructureMatcher) -> bool:
    """Whether `matcher.fit_anonymous(s1, s2)` can succeed at all, from the lattices alone (~0.3 ms
    against ~3 ms for a fit that fails): False means no match, for every species mapping.

    For cells of equal size (a bucket's), without supercells and with volume scaling, the matcher
    scales both lattices to one volume (s1 by r = (V2 / V1)^(1/6), s2 by 1/r) and tries site
    mappings only on the lattices of s1's vectors that match s2's lattice within `ltol` and
    `angle_tol` (`Lattice.find_all_mappings`) with a transformation of determinant ±1. None: no fit.
    Most non-matching pairs in a bucket end here; the test suite checks the implication on mp40.
    """
    ratio = (s2.volume / s1.volume) ** (1 / 6)
    l1, l2 = Lattice(s1.lattice.matrix * ratio), Lattice(s2.lattice.matrix / ratio)
    mappings = l1.find_all_mappings(l2, ltol=matcher.ltol, atol=matcher.angle_tol, skip_rotation_matrix=True)
    return any(math.isclose(abs(np.linalg.det(m)), 1, abs_tol=0.5) for _, _, m in mappings)


def _matches(s1, s2, matcher: StructureMatcher) -> bool:
    return lattices_compatible(s1, s2, matcher) and matcher.fit_anonymous(s1, s2, skip_structure_reduction=True)


def _connected_matches(structures: list, ids: list[int], matcher) -> list[list[int]]:
    """Connected components of "matches anonymously" (matching is not transitive, so a greedy
    clustering against one representative per group can put two matching structures apart).

    Each structure is compared with the members of every current component until one matches;
    all components it matches are merged. In homogeneous buckets that is one comparison each;
    separating k components costs every cross pair, which `lattices_compatible` makes cheap.
    """
    components: list[list[int]] = []
    for j, structure in enumerate(structures):
        matched = [c for c in components if any(_matches(structures[k], structure, matcher) for k in c)]
        merged = [j] + [k for c in matched for k in c]
        components = [c for c in components if not any(c is m for m in matched)] + [merged]
    return [sorted(ids[k] for k in c) for c in components]


def split_by_structure_type(
    entries: Sequence,
    test_fraction: float = 0.3,
    seed: int = 0,
    grouping: Grouping = "auto",
    keys: Optional[Sequence[str]] = None,
) -> tuple[list, list]:
    """(statistics_entries, test_entries): no group key on both sides, reproducible from `seed`.

    `keys` (from `group_keys`) may be passed to reuse a grouping across seeds.
    """
    if keys is None:
        keys = group_keys(entries, grouping)
    if len(keys) != len(entries):
        raise ValueError("one group key per entry is needed")
    members: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        members[key].append(i)
    order = sorted(members)  # fixed order before shuffling: the split depends only on seed and data
    rng = np.random.default_rng(seed)
    rng.shuffle(order)
    target = test_fraction * len(entries)
    test_ids: set[int] = set()
    for key in order:
        if len(test_ids) >= target:
            break
        test_ids.update(members[key])  # whole groups, whatever their size (module docstring)
    stats = [e for i, e in enumerate(entries) if i not in test_ids]
    test = [e for i, e in enumerate(entries) if i in test_ids]
    return stats, test
