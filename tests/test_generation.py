"""The synthetic crystal generator: symmetry, distributions, reproducibility, limits, CLI.

Statistics: built by `build_statistics` from the mp40 statistics part with a low minimum
count (3), so the class list is broad; plus a hand-made generic statistics over all 230 space groups
(every Wyckoff site possible) that borrows the mp40 lattice and volume samples.
Sample sizes (test-time budget 2.5 min): fast path 2,000 crystals, reference path 2,000 crystals for
the chi-square tests; every class 3 fast + 1 reference crystals; all 230 groups 2 fast crystals each.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import numpy as np
import pytest
import spglib
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from pyxtal.database.element import Element
from pyxtal.symmetry import Group
from scipy import stats as scipy_stats
from typer.testing import CliRunner

from tests._collection_cache import mp40_split
from xrdgen.cli import app, main
from xrdgen.collection.entries import entry_from_structure
from xrdgen.config import CollectionConfig, GenerationConfig, StatisticsConfig
from xrdgen.crystal import Crystal
from xrdgen.generation.attempts import ACCEPTED, TOO_MANY_SITES
from xrdgen.generation.generator import Generator
from xrdgen.generation.randomize import ordered_reference, randomize
from xrdgen.generation.wyckoff import wyckoff_table
from xrdgen.statistics.build import asymmetric_unit_size, build_statistics
from xrdgen.statistics.model import SpaceGroupStatistics, Statistics

N_CHI2 = 1200
P_MIN = 1e-3  # fixed seeds: a p-value below this is a real disagreement, not bad luck


@pytest.fixture(scope="module")
def mp40_stats(mp40_dir, ray_local):
    stats_part, _ = mp40_split(str(mp40_dir))
    return build_statistics(stats_part, StatisticsConfig(min_count_per_spacegroup=3), {"source": "mp40 (test)"})


@pytest.fixture(scope="module")
def generic_stats(mp40_stats):
    """All 230 space groups, every Wyckoff site equally likely: reaches sites the data never uses."""
    elements = {"O": 0.3, "Si": 0.15, "Na": 0.1, "Fe": 0.1, "Cl": 0.1, "Mg": 0.1, "Ba": 0.05, "Cu": 0.1}
    per = {}
    for sg in range(1, 231):
        names = wyckoff_table(sg).names
        per[sg] = SpaceGroupStatistics(10, [0.3, 0.4, 0.3], elements, [0.7, 0.3], {n: 1 / len(names) for n in names})
    return Statistics(
        list(range(1, 231)),
        {sg: 1 / 230 for sg in range(1, 231)},
        per,
        mp40_stats.lattice_samples,
        mp40_stats.volume_samples,
        mp40_stats.volume_bandwidth,
        {"source": "generic (test)"},
    )


@pytest.fixture(scope="module")
def chi2_runs(mp40_stats):
    """1,200 crystals per path, attempts recorded; different seeds so the two samples are independent."""
    runs = {}
    for path, seed in (("fast", 11), ("reference", 12)):
        generator = Generator(mp40_stats, GenerationConfig(path=path), seed=seed, record_attempts=True)
        crystals = generator.generate_many(N_CHI2)
        runs[path] = (generator, crystals)
    return runs


def spglib_number(crystal, symprec=1e-8, angle_tolerance=5.0) -> int:
    """Independent check: a pymatgen Structure of the arrays, asked through SpacegroupAnalyzer.

    (Not `Crystal.to_structure()`: it rounds coordinates to 1e-6, coarser than symprec 1e-8.)
    """
    structure = Structure(Lattice(crystal.lattice), [int(z) for z in crystal.numbers], crystal.frac_coords)
    return SpacegroupAnalyzer(structure, symprec=symprec, angle_tolerance=angle_tolerance).get_space_group_number()


# ------------------------------------------------------------------------------- Wyckoff tables
def _rows(frac: np.ndarray) -> np.ndarray:
    """Fractional coordinates in [0, 1), rounded, rows in lexicographic order (order-free comparison)."""
    r = np.round(np.mod(frac, 1.0), 7) % 1.0
    return r[np.lexsort(r.T[::-1])]


def test_wyckoff_tables_reproduce_pyxtal_orbits_for_all_230_groups():
    rng = np.random.default_rng(0)
    for sg in range(1, 231):
        table, group = wyckoff_table(sg), Group(sg)
        assert table.names == tuple(f"{wp.multiplicity}{wp.letter}" for wp in group)
        for site in {0, int(rng.integers(len(group))), len(group) - 1}:
            point = table.project(site, rng.random(3))
            ours = _rows(table.orbit(site, point))
            theirs = _rows(group[site].apply_ops(point))
            assert ours.shape == (table.multiplicities[site], 3)
            assert np.allclose(ours, theirs, atol=1e-7), (sg, table.names[site])
            assert len(np.unique(ours, axis=0)) == table.multiplicities[site]  # m distinct atoms


# ----------------------------------------------------------------------------------- symmetry
def test_every_class_is_confirmed_by_an_independent_spglib_call(mp40_stats):
    assert len(mp40_stats.spacegroups) >= 60  # a broad class list
    fast = Generator(mp40_stats, GenerationConfig(path="fast"), seed=1)
    reference = Generator(mp40_stats, GenerationConfig(path="reference"), seed=2)
    for sg in mp40_stats.spacegroups:
        for crystal in [fast.generate(sg) for _ in range(3)] + [reference.generate(sg)]:
            assert crystal.spacegroup == sg
            assert spglib_number(crystal) == sg


def test_all_230_space_groups_with_generic_statistics(generic_stats):
    generator = Generator(generic_stats, GenerationConfig(), seed=3)
    for sg in range(1, 231):
        for _ in range(2):
            crystal = generator.generate(sg)
            cell = (crystal.lattice, crystal.frac_coords, crystal.numbers)
            assert spglib.get_symmetry_dataset(cell, symprec=1e-8, angle_tolerance=5.0).number == sg


# ------------------------------------------------------------------------------ distributions
def _goodness_of_fit(observed: dict, expected: dict) -> float:
    """Pooled chi-square p-value; within each group, cells expecting < 5 are merged into one."""
    chi2, dof = 0.0, 0
    for group, exp in expected.items():
        obs = observed.get(group, {})
        big = [k for k, e in exp.items() if e >= 5]
        o = [obs.get(k, 0) for k in big]
        e = [exp[k] for k in big]
        rest_e = sum(v for k, v in exp.items() if k not in big)
        if rest_e > 0:
            o.append(sum(v for k, v in obs.items() if k not in big))
            e.append(rest_e)
        assert sum(obs.values()) == pytest.approx(sum(exp.values()))
        if len(e) < 2:
            continue
        o, e = np.array(o, float), np.array(e, float)
        chi2 += float(np.sum((o - e) ** 2 / e))
        dof += len(e) - 1
    return float(scipy_stats.chi2.sf(chi2, dof)) if dof else 1.0


def _count(pairs) -> dict:
    out: dict = {}
    for group, key in pairs:
        out.setdefault(group, {}).setdefault(key, 0)
        out[group][key] += 1
    return out


@pytest.mark.parametrize("path", ["fast", "reference"])
def test_draws_follow_the_statistics(chi2_runs, mp40_stats, path):
    generator, crystals = chi2_runs[path]
    attempts = generator.attempts
    assert len(crystals) == N_CHI2 and all(isinstance(c.spacegroup, int) for c in crystals)

    # Step 1: space groups of the crystals against the prior.
    observed = _count(("all", c.spacegroup) for c in crystals)
    expected = {"all": {sg: N_CHI2 * p for sg, p in mp40_stats.prior.items()}}
    assert _goodness_of_fit(observed, expected) > P_MIN

    # Step 2: every draw of the number of unique elements, per space group.
    draws = [(a.spacegroup, a.n_elements) for a in attempts if a.n_elements_drawn]
    observed = _count(draws)
    expected = {
        sg: {k + 1: sum(obs.values()) * p for k, p in enumerate(mp40_stats.per_spacegroup[sg].n_elements_probs)}
        for sg, obs in observed.items()
    }
    assert _goodness_of_fit(observed, expected) > P_MIN

    # Step 4: every Wyckoff draw (collisions included), per space group.
    observed = _count((a.spacegroup, w) for a in attempts for w in a.wyckoff_draws)
    expected = {}
    for sg, obs in observed.items():  # names the group lacks (a bad collection entry) are left out
        known = {w: p for w, p in mp40_stats.per_spacegroup[sg].wyckoff_probs.items() if w in wyckoff_table(sg).index}
        expected[sg] = {w: sum(obs.values()) * p / sum(known.values()) for w, p in known.items()}
    assert _goodness_of_fit(observed, expected) > P_MIN

    # The accepted crystals are what the attempts say: the sites placed, in the space group asked.
    accepted = [a for a in attempts if a.outcome == ACCEPTED]
    assert len(accepted) == N_CHI2
    for attempt, crystal in zip(accepted, crystals):
        table = wyckoff_table(attempt.spacegroup)
        assert crystal.n_sites == sum(table.multiplicities[table.index[w]] for w in attempt.wyckoffs)
        assert attempt.found_spacegroup == crystal.spacegroup == attempt.spacegroup


def _two_sample_p(a: list, b: list, min_total: int = 10) -> float:
    """chi-square test of homogeneity of two samples of labels; rare labels pooled into one."""
    ca, cb = Counter(a), Counter(b)
    keys = [k for k in set(ca) | set(cb) if ca[k] + cb[k] >= min_total]
    rows = [[ca[k] for k in keys], [cb[k] for k in keys]]
    rest = (sum(ca.values()) - sum(rows[0]), sum(cb.values()) - sum(rows[1]))
    if sum(rest) > 0:
        rows[0].append(rest[0])
        rows[1].append(rest[1])
    return float(scipy_stats.chi2_contingency(np.array(rows)).pvalue)


def test_fast_and_reference_paths_agree(chi2_runs):
    """Accepted crystals (after the retry rule) of the two paths: space groups, elements, Wyckoff sites."""
    acc = {p: [a for a in g.attempts if a.outcome == ACCEPTED] for p, (g, _) in chi2_runs.items()}
    fast, ref = acc["fast"], acc["reference"]
    assert _two_sample_p([a.spacegroup for a in fast], [a.spacegroup for a in ref]) > P_MIN
    assert _two_sample_p([len(set(a.elements)) for a in fast], [len(set(a.elements)) for a in ref]) > P_MIN
    assert _two_sample_p([len(a.wyckoffs) for a in fast], [len(a.wyckoffs) for a in ref]) > P_MIN
    # Sites of one crystal are not independent of each other, so each crystal gives one: its first
    # site, and one picked at random.
    pick = np.random.default_rng(0)
    for choose in (lambda a: a.wyckoffs[0], lambda a: a.wyckoffs[pick.integers(len(a.wyckoffs))]):
        assert _two_sample_p([f"{a.spacegroup}:{choose(a)}" for a in fast], [f"{a.spacegroup}:{choose(a)}" for a in ref]) > P_MIN
    # Volumes per atom too (continuous: two-sample Kolmogorov-Smirnov).
    per_atom = {p: [c.volume / c.n_sites for c in crystals] for p, (_, crystals) in chi2_runs.items()}
    assert scipy_stats.ks_2samp(per_atom["fast"], per_atom["reference"]).pvalue > P_MIN
    # And the rejection rates are alike (mismatch share of all attempts).
    mism = {p: (g.outcomes["spacegroup_mismatch"], sum(g.outcomes.values())) for p, (g, _) in chi2_runs.items()}
    table = np.array([[m, t - m] for m, t in mism.values()])
    assert scipy_stats.chi2_contingency(table).pvalue > P_MIN


# ----------------------------------------------------------------------- reproducibility, rules
@pytest.mark.parametrize("path", ["fast", "reference"])
def test_a_seed_reproduces_the_crystals_whatever_numpys_global_state(mp40_stats, path):
    def run(global_seed):
        np.random.seed(global_seed)  # PyXtal's global generator must not matter
        return Generator(mp40_stats, GenerationConfig(path=path), seed=5).generate_many(15)

    first, second = run(1), run(2)
    for a, b in zip(first, second):
        assert a.spacegroup == b.spacegroup
        assert np.array_equal(a.lattice, b.lattice) and np.array_equal(a.frac_coords, b.frac_coords)
        assert np.array_equal(a.numbers, b.numbers)
    other = Generator(mp40_stats, GenerationConfig(path=path), seed=6).generate_many(15)
    assert any(a.spacegroup != b.spacegroup or a.n_sites != b.n_sites for a, b in zip(first, other))


def _one_per_class(generator, statistics) -> list:
    """One crystal per class where the limits admit one; a class that admits none raises RuntimeError."""
    crystals = []
    for sg in statistics.spacegroups:
        try:
            crystals.append(generator.generate(sg))
        except RuntimeError as exc:
            assert "no crystal in" in str(exc)
    return crystals


def test_limits_of_the_config_hold(mp40_stats):
    config = GenerationConfig(
        max_volume=800.0, max_atoms_asymmetric_unit=4, min_density_volume_per_atom=12.0, max_attempts_per_crystal=200
    )
    generator = Generator(mp40_stats, config, seed=7, record_attempts=True)
    crystals = _one_per_class(generator, mp40_stats)
    assert len(crystals) >= 0.7 * len(mp40_stats.spacegroups)
    assert all(c.volume <= 800.0 * (1 + 1e-9) for c in crystals)
    assert all(c.volume / c.n_sites >= 12.0 * (1 - 1e-9) for c in crystals)
    accepted = [a for a in generator.attempts if a.outcome == ACCEPTED]
    assert all(len(a.wyckoffs) <= 4 for a in accepted)
    assert generator.outcomes[TOO_MANY_SITES] > 0
    # One limit, one count: the generator's drawn sites are the asymmetric unit the statistics filter
    # counts (`asymmetric_unit_size`) on the same crystal read back as a collection entry.
    reading = CollectionConfig(symprec=1e-5, max_volume_per_atom=1000.0)
    entries = [entry_from_structure(c.to_structure(), "generated", reading) for c in crystals]
    assert [asymmetric_unit_size(e) for e in entries] == [len(a.wyckoffs) for a in accepted]


def test_retry_rule_redraws_the_number_of_elements_after_the_set_failures(mp40_stats):
    config = GenerationConfig(max_volume=400.0, tries_per_n_elements=4, max_attempts_per_crystal=200)  # many failures
    generator = Generator(mp40_stats, config, seed=8, record_attempts=True)
    _one_per_class(generator, mp40_stats)
    failures_since_draw, n_redraws, previous_sg = 0, 0, None
    for attempt in generator.attempts:
        if attempt.spacegroup != previous_sg:  # the next class's crystal starts
            failures_since_draw, previous_sg = 0, attempt.spacegroup
        if attempt.n_elements_drawn:
            if failures_since_draw:  # a redraw within a crystal: only after exactly 4 failures
                assert failures_since_draw == 4
                n_redraws += 1
            failures_since_draw = 0
        if attempt.outcome not in (ACCEPTED, TOO_MANY_SITES):
            failures_since_draw += 1
        if attempt.outcome == ACCEPTED:
            failures_since_draw = 0
        else:
            assert failures_since_draw <= 4
    assert n_redraws > 0 and generator.outcomes["too_large"] > 0


def test_optional_distance_check(mp40_stats):
    generator = Generator(mp40_stats, GenerationConfig(distance_check=True, min_distance=1.2), seed=9)
    for crystal in generator.generate_many(60):
        structure = crystal.to_structure()
        if len(structure) > 1:
            d = structure.distance_matrix
            assert d[~np.eye(len(structure), dtype=bool)].min() >= 1.2 - 1e-9
        assert min(np.linalg.norm(crystal.lattice, axis=1)) >= 1.2 - 1e-9
    assert generator.outcomes["too_close"] > 0  # the check did reject some


# ---------------------------------------------------------------------------------- randomize
def _v_atomic(crystal) -> float:
    """Occupancy-weighted Σ 4/3·π·((r_cov + r_vdW)/2)³ over the rows, from PyXtal's radii directly."""
    total = 0.0
    for z, occupancy in zip(crystal.numbers, crystal.occupancies):
        element = Element(int(z))
        total += occupancy * 4 / 3 * np.pi * ((element.covalent_radius + element.vdw_radius) / 2) ** 3
    return total


def test_randomize_keeps_wyckoff_assignment_and_redraws_coordinates_and_lattice(mp40_dir, mp40_stats):
    _, test_part = mp40_split(str(mp40_dir))
    collection, generation = CollectionConfig(), GenerationConfig()
    entries = [e for e in test_part if e.ordered][:40]
    rng = np.random.default_rng(10)
    n_new_volume = 0
    for entry in entries:
        crystal = entry.crystal
        moved = randomize(crystal, mp40_stats, rng, collection, generation, coordinates=True, lattice=False)
        assert moved.spacegroup == entry.spacegroup
        assert spglib_number(moved, symprec=1e-5) == entry.spacegroup
        assert sorted(moved.numbers) == sorted(crystal.numbers)
        assert moved.volume == pytest.approx(crystal.volume, rel=1e-6)
        reshaped = randomize(crystal, mp40_stats, rng, collection, generation, coordinates=False, lattice=True)
        assert spglib_number(reshaped, symprec=1e-5) == entry.spacegroup
        assert sorted(reshaped.numbers) == sorted(crystal.numbers)
        assert reshaped.n_sites * generation.min_density_volume_per_atom * (1 - 1e-9) <= reshaped.volume <= generation.max_volume
        n_new_volume += reshaped.volume != pytest.approx(crystal.volume, rel=1e-3)
    assert n_new_volume >= 0.9 * len(entries)  # the lattice mode redraws the volume too
    free = [
        e
        for e in entries
        if any(wyckoff_table(e.spacegroup).dofs[wyckoff_table(e.spacegroup).index[w]] for _, w in e.wyckoff_sites)
    ]
    assert free  # some have free coordinates, and those moved
    moved = randomize(free[0].crystal, mp40_stats, np.random.default_rng(0), collection, generation)
    before, after = _rows(free[0].crystal.frac_coords), _rows(moved.frac_coords)
    assert before.shape == after.shape and not np.allclose(before, after)


def test_randomized_volumes_follow_the_volume_kde(mp40_dir, mp40_stats):
    """Lattice mode: V / V_atomic of the redrawn cells against direct draws of the denseness factor."""
    _, test_part = mp40_split(str(mp40_dir))
    collection, generation = CollectionConfig(), GenerationConfig()
    crystal = next(e.crystal for e in test_part if e.ordered and e.crystal.n_sites >= 4)
    v_atomic = _v_atomic(crystal)
    rng = np.random.default_rng(13)
    redrawn = [randomize(crystal, mp40_stats, rng, collection, generation, coordinates=False, lattice=True) for _ in range(300)]
    floor = crystal.n_sites * generation.min_density_volume_per_atom
    direct = [
        max(mp40_stats.sample_denseness(crystal.spacegroup, v_atomic, rng) * v_atomic, floor) / v_atomic for _ in range(300)
    ]
    ratios = [c.volume / v_atomic for c in redrawn]
    assert scipy_stats.ks_2samp(ratios, direct).pvalue > P_MIN
    assert np.std(ratios) > 0.01 * np.mean(ratios)  # drawn, not a fixed volume


def test_randomize_takes_its_tolerances_from_the_config(mp40_dir, mp40_stats):
    """The label follows `collection.symprec`; the check follows `generation.symprec`."""
    _, test_part = mp40_split(str(mp40_dir))
    loose, tight = CollectionConfig(symprec=0.1), CollectionConfig(symprec=1e-4)
    ordered = [e.crystal for e in test_part if e.ordered]
    # A crystal whose label depends on the tolerance (a slightly distorted one).
    crystal = next(c for c in ordered if spglib_number(c, 0.1, -1.0) != spglib_number(c, 1e-4, -1.0))
    labels = set()
    for collection in (loose, tight):
        moved = randomize(crystal, mp40_stats, np.random.default_rng(1), collection, GenerationConfig())
        assert moved.spacegroup == spglib_number(crystal, symprec=collection.symprec, angle_tolerance=-1.0)
        labels.add(moved.spacegroup)
    assert len(labels) == 2
    # A check tolerance of 10 Å merges every atom: no redraw can keep the space group.
    with pytest.raises(ValueError, match="kept space group"):
        randomize(ordered[0], mp40_stats, np.random.default_rng(2), loose, GenerationConfig(symprec=10.0), max_tries=3)


def test_ordered_reference_sets_occupancies_to_one_and_relabels(mp40_dir, mp40_stats):
    _, test_part = mp40_split(str(mp40_dir))
    collection = CollectionConfig()
    for entry in [e for e in test_part if e.ordered][:20]:  # ordered crystals stay as they are
        reference = ordered_reference(entry.crystal, collection)
        assert np.array_equal(reference.frac_coords, entry.crystal.frac_coords)
        assert np.array_equal(reference.numbers, entry.crystal.numbers) and reference.spacegroup == entry.spacegroup
    # mp40 is ordered throughout: two disordered crystals by hand. CsCl type with the body centre
    # 60 % Cs / 40 % Cl (Pm-3m; ordered to Cs on both sites it is body-centred, Im-3m), and rock salt
    # with half-occupied Na sites (Fm-3m either way).
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    disordered = [
        (Crystal(np.eye(3) * 4.1, [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]], [55, 55, 17], [1.0, 0.6, 0.4]), 221, 229),
        (Crystal(np.eye(3) * 5.6, np.vstack([fcc, fcc + 0.5]) % 1.0, [11] * 4 + [17] * 4, [0.5] * 4 + [1.0] * 4), 225, 225),
    ]
    for crystal, label, ordered_label in disordered:
        assert spglib_number(crystal, symprec=collection.symprec, angle_tolerance=-1.0) != 0
        reference = ordered_reference(crystal, collection)
        assert np.all(reference.occupancies == 1.0)
        assert len(np.unique(_rows(reference.frac_coords), axis=0)) == reference.n_sites  # one atom per position
        assert reference.n_sites == len(np.unique(_rows(crystal.frac_coords), axis=0))
        for position, z in zip(reference.frac_coords, reference.numbers):  # the majority species of its site
            here = np.all(np.isclose(np.mod(crystal.frac_coords - position + 0.5, 1.0), 0.5, atol=1e-5), axis=1)
            assert crystal.occupancies[here & (crystal.numbers == z)].max() == crystal.occupancies[here].max()
        assert reference.spacegroup == ordered_label == spglib_number(reference, symprec=collection.symprec, angle_tolerance=-1.0)
        assert randomize(crystal, mp40_stats, np.random.default_rng(3), collection, GenerationConfig()).spacegroup == label
        moved = randomize(reference, mp40_stats, np.random.default_rng(3), collection, GenerationConfig(), lattice=True)
        assert moved.spacegroup == ordered_label and np.all(moved.occupancies == 1.0)


# -------------------------------------------------------------------------------------- CLI
def test_cli_writes_cifs_in_their_space_groups_and_a_summary(mp40_stats, tmp_path):
    stats_file = mp40_stats.save(tmp_path / "stats.json.gz")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["generate", str(stats_file), "-n", "6", "-o", str(out), "--seed", "4"])
    assert result.exit_code == 0, result.output
    cifs = sorted(out.glob("*.cif"))
    assert len(cifs) == 6
    for cif in cifs:
        sg = int(cif.stem.split("_sg")[1])
        structure = Structure.from_file(cif)
        cell = (structure.lattice.matrix, structure.frac_coords, [site.specie.Z for site in structure])
        assert spglib.get_symmetry_dataset(cell, symprec=1e-5).number == sg
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_crystals"] == 6 and summary["attempt_outcomes"]["accepted"] == 6
    assert (out / "spacegroups.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "args, culprit",
    [
        (["{tmp}/missing.json", "-n", "2"], "missing.json"),
        (["{stats}", "-n", "2", "--spacegroup", "999"], "999"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_code_2(mp40_stats, tmp_path, monkeypatch, capsys, args, culprit):
    stats_file = mp40_stats.save(tmp_path / "stats.json.gz")
    argv = [a.format(tmp=tmp_path, stats=stats_file) for a in args]
    monkeypatch.setattr(sys, "argv", ["xrdgen", "generate", *argv, "-o", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and culprit in err and "\n" not in err
    assert not (tmp_path / "out").exists()
