"""Structure-type split on mp40 (prototype matching, serial and as Ray tasks) and on structure-type labels."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from functools import partial

import numpy as np
from _collection_cache import mp40_group_keys, mp40_report, mp40_split
from pymatgen.analysis.structure_matcher import StructureMatcher

from services.collection_reader import pack_buckets, ray_map_groups
from xrdgen.collection.split import bucket_key, candidate_buckets, group_keys, lattices_compatible, split_by_structure_type


def test_no_group_crosses_and_sizes_follow_the_fraction(mp40_dir, ray_local):
    entries = mp40_report(str(mp40_dir)).entries
    keys = dict(zip((e.source_id for e in entries), mp40_group_keys(str(mp40_dir))))
    stats, test = mp40_split(str(mp40_dir))
    assert len(stats) + len(test) == len(entries)
    assert {e.source_id for e in stats}.isdisjoint(e.source_id for e in test)
    assert {keys[e.source_id] for e in stats}.isdisjoint(keys[e.source_id] for e in test)
    assert abs(len(test) / len(entries) - 0.3) < 0.03


def test_no_prototype_crosses_by_an_independent_matcher(mp40_dir, ray_local):
    """pymatgen's StructureMatcher (defaults, primitive cells) finds no test structure in the statistics part."""
    stats, test = mp40_split(str(mp40_dir))
    by_bucket = defaultdict(list)
    for e in stats:
        by_bucket[(e.spacegroup, e.structure.composition.anonymized_formula)].append(e)
    matcher = StructureMatcher()
    rng = np.random.default_rng(3)
    compared = 0
    for i in rng.choice(len(test), size=120, replace=False):
        t = test[i]
        for s in by_bucket.get((t.spacegroup, t.structure.composition.anonymized_formula), []):
            compared += 1
            assert not matcher.fit_anonymous(t.structure, s.structure), (t.source_id, s.source_id)
    assert compared >= 20  # the check met candidates (same space group and anonymous formula)


def test_prototype_groups_hold_matching_structures(mp40_dir, ray_local):
    entries = mp40_report(str(mp40_dir)).entries
    groups = defaultdict(list)
    for entry, key in zip(entries, mp40_group_keys(str(mp40_dir))):
        groups[key].append(entry)
    big = sorted(groups.values(), key=len, reverse=True)
    assert len(big[0]) >= 10  # rock salt and friends: mp40 has common prototypes
    matcher = StructureMatcher()
    for members in big[:5]:
        # groups are connected components of "matches": each member matches another member
        for entry in members[:3]:
            assert any(matcher.fit_anonymous(entry.structure, other.structure) for other in members if other is not entry)


def test_split_is_reproducible_from_the_seed(mp40_dir, ray_local):
    entries = mp40_report(str(mp40_dir)).entries
    keys = mp40_group_keys(str(mp40_dir))
    a = split_by_structure_type(entries, 0.3, seed=5, keys=keys)
    b = split_by_structure_type(entries, 0.3, seed=5, keys=keys)
    c = split_by_structure_type(entries, 0.3, seed=6, keys=keys)
    assert [e.source_id for e in a[1]] == [e.source_id for e in b[1]]
    assert {e.source_id for e in a[1]} != {e.source_id for e in c[1]}


def test_structure_type_field_groups_even_across_spellings(mp40_dir, ray_local):
    entries = mp40_report(str(mp40_dir)).entries[:300]
    spellings = ["Perovskite{}", "perovskite{} ", "PEROVSKITE{}"]
    typed = [dataclasses.replace(e, structure_type=spellings[i % 3].format(i % 23)) for i, e in enumerate(entries)]
    for seed in range(4):
        stats, test = split_by_structure_type(typed, 0.3, seed=seed, grouping="structure_type")
        norm = lambda e: e.structure_type.strip().lower()  # noqa: E731
        assert {norm(e) for e in stats}.isdisjoint(norm(e) for e in test)
        assert 0.2 < len(test) / len(typed) < 0.4


def test_ray_grouping_gives_the_serial_groups(mp40_dir, ray_local):
    """Buckets matched as Ray tasks (costliest first, several per task) give exactly the serial keys."""
    entries = mp40_report(str(mp40_dir)).entries
    buckets = [b for b in candidate_buckets(entries) if len(b) > 1]
    assert len(buckets) >= 50 and max(map(len, buckets)) >= 10  # real work for several tasks
    ray_keys = group_keys(entries, "prototype", partial(ray_map_groups, progress=False))
    assert ray_keys == list(mp40_group_keys(str(mp40_dir)))
    assert len(set(ray_keys)) < 0.9 * len(entries)  # prototypes were merged, not every entry alone


def test_bucket_keys_are_those_of_the_pymatgen_structure(mp40_dir, ray_local):
    for entry in mp40_report(str(mp40_dir)).entries[:200]:
        structure = entry.crystal.to_structure()
        sg, formula, n_sites, multiplicities = bucket_key(entry)
        assert (sg, formula, n_sites) == (entry.spacegroup, structure.composition.anonymized_formula, len(structure))
        assert sum(multiplicities) == n_sites


def test_buckets_are_packed_in_order_into_tasks_of_similar_cost():
    sizes = [40, 2, 3, 2, 2, 30, 2, 2, 2, 2, 5, 2]
    tasks = pack_buckets(sizes, 4)
    assert [i for task in tasks for i in task] == list(range(len(sizes)))
    assert tasks[0] == [0]  # cost 1600 of 2566: above the 641 per task, alone
    assert 3 <= len(tasks) <= 5


def test_lattice_precheck_never_rejects_a_match(mp40_dir, ray_local):
    """`lattices_compatible` False must imply no anonymous fit (pymatgen's matcher, as the grouping runs it)."""
    entries = mp40_report(str(mp40_dir)).entries
    matcher = StructureMatcher(primitive_cell=False)
    rng = np.random.default_rng(11)
    buckets = [b for b in candidate_buckets(entries) if len(b) > 1]
    fits = rejected = 0
    for b in rng.permutation(len(buckets))[:80]:
        members = buckets[b][:6]
        reduced = [entries[i].crystal.to_structure().get_reduced_structure() for i in members]
        for x in range(len(reduced)):
            for y in range(x + 1, len(reduced)):
                fit = matcher.fit_anonymous(reduced[x], reduced[y], skip_structure_reduction=True)
                compatible = lattices_compatible(reduced[x], reduced[y], matcher)
                assert compatible or not fit, (members[x], members[y])
                fits += fit
                rejected += not compatible
    assert fits >= 50 and rejected >= 5  # both outcomes were exercised


def test_large_groups_land_on_either_side_at_the_expected_rate():
    """No size bias: a group of 300 structures is held out about as often as the test fraction says,
    like the singletons, over many split seeds (the old rule never held out a group that overshot)."""
    sizes = [300, 120, 60] + [1] * 1500 + [5] * 100  # a few big prototypes among many small ones
    keys = [f"g{g}" for g, size in enumerate(sizes) for _ in range(size)]
    entries = list(range(len(keys)))
    held_out = defaultdict(int)
    seeds = 400
    fractions = []
    for seed in range(seeds):
        _, test = split_by_structure_type(entries, 0.3, seed, keys=keys)
        test = set(test)
        fractions.append(len(test) / len(entries))
        for g, start in enumerate(np.cumsum([0] + sizes[:-1])[:3]):
            held_out[g] += int(start in test)
    assert min(fractions) >= 0.3 and max(fractions) < 0.3 + 300 / len(entries) + 1e-9
    for g in range(3):  # binomial(400, ~0.3): 3 standard deviations are about 0.07
        assert abs(held_out[g] / seeds - 0.3) < 0.08, (sizes[g], held_out[g] / seeds)
