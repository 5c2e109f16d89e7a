"""Statistics of mp40's statistics part: definitions, KDE reproduction, exact conditional sampler, file format, CLI."""

from __future__ import annotations

import csv
import gzip
import json
import pickle
import sys
from collections import Counter, defaultdict

import numpy as np
import pytest
import statsmodels.api as sm
from _collection_cache import mp40_split, mp40_statistics
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from pyxtal.database.element import Element as PyxtalElement
from scipy import stats as scipy_stats
from typer.testing import CliRunner

from xrdgen.cli import app
from xrdgen.collection.entries import entry_from_structure, load_entries
from xrdgen.config import CollectionConfig, StatisticsConfig
from xrdgen.errors import UserError
from xrdgen.geometry import (
    LATTICE_PARAMETER_NAMES,
    atomic_volume,
    cell_volume,
    element_volume,
    free_parameters,
    full_lattice_parameters,
    lattice_matrix,
    lattice_parameters,
    unit_volume_cell,
    unit_volume_parameters,
)
from xrdgen.statistics.build import asymmetric_unit_atoms, build_statistics, classes_for_min_counts
from xrdgen.statistics.model import Statistics

csv.field_size_limit(sys.maxsize)


@pytest.fixture(scope="module")
def statistics(mp40_dir, ray_local) -> Statistics:
    return mp40_statistics(str(mp40_dir))


def test_class_list_prior_and_min_count(statistics, mp40_dir):
    counts = {sg: s.count for sg, s in statistics.per_spacegroup.items()}
    assert statistics.spacegroups == sorted(sg for sg, c in counts.items() if c >= 20)
    assert sum(statistics.prior.values()) == pytest.approx(1.0)
    total = sum(counts[sg] for sg in statistics.spacegroups)
    for sg in statistics.spacegroups:
        assert statistics.prior[sg] == pytest.approx(counts[sg] / total)
        assert statistics.spacegroups[statistics.label_of(sg)] == sg
    table = classes_for_min_counts(statistics, (1, 5, 20, 50))
    assert table[20] == len(statistics.spacegroups)
    assert table[1] >= table[5] >= table[20] >= table[50]
    stats_part, _ = mp40_split(str(mp40_dir))
    assert sum(counts.values()) == len(stats_part)  # mp40 is ordered and small: every structure counts


def _disordered(entry, source_id: str, volume: float | None = None):
    """A real entry with every site of its most frequent element shared 50/50 with a neighbour
    element (same orbits, so the same space group), read by the collection's own code."""
    structure = entry.structure.copy()
    element = Counter(str(site.specie) for site in structure).most_common(1)[0][0]
    partner = "S" if element != "S" else "Se"
    structure.replace_species({element: {element: 0.5, partner: 0.5}})
    if volume is not None:
        structure.scale_lattice(volume)
    return entry_from_structure(structure, source_id, CollectionConfig()), element


def test_asymmetric_unit_of_a_rhombohedral_entry_matches_pymatgen(mp40_dir):
    """mp-19804 (In2Co3S2, R-3m, c = 13.7 Å): 4 orbits, In 3a, In 3b, Co 9d, S 6c; counted apart from
    our code by pymatgen's symmetrized structure of the file's own primitive cell."""
    with open(mp40_dir / "random_split_test.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["material_id"] == "mp-19804")
    structure = Structure.from_str(row["cif"], fmt="cif")
    expected = len(SpacegroupAnalyzer(structure, symprec=1e-3).get_symmetrized_structure().equivalent_sites)
    entry = entry_from_structure(structure, "mp-19804", CollectionConfig())
    assert entry.spacegroup == 166 and expected == 4
    assert asymmetric_unit_atoms(entry.crystal) == expected == len(entry.wyckoff_sites)
    disordered, element = _disordered(entry, "mp-19804-mixed")  # each orbit of `element` counts two species
    assert asymmetric_unit_atoms(disordered.crystal) == expected + sum(el == element for el, _ in entry.wyckoff_sites)


def test_prior_counts_partially_occupied_structures_wyckoff_tables_do_not(statistics, mp40_dir):
    """Space-group prior over every statistics-part structure within the limits (partially occupied
    ones too, as the original); Wyckoff and element tables from the ordered ones only."""
    stats_part, _ = mp40_split(str(mp40_dir))
    config = StatisticsConfig(min_count_per_spacegroup=20)
    base = build_statistics(stats_part, config)
    added = []
    for i, entry in enumerate(e for e in stats_part if e.spacegroup in base.spacegroups[:6]):
        if i % 3 == 0:
            disordered, element = _disordered(entry, f"mixed-{i}")
            assert not disordered.ordered and disordered.spacegroup == entry.spacegroup
            orbits_of_element = sum(el == element for el, _ in entry.wyckoff_sites)
            assert asymmetric_unit_atoms(disordered.crystal) == len(entry.wyckoff_sites) + orbits_of_element
            added.append(disordered)
    big = next(e for e in stats_part if e.crystal.n_sites >= 30)
    too_large, _ = _disordered(big, "too-large", volume=config.max_volume * 1.1)
    mixed = build_statistics(stats_part + added + [too_large], config)

    extra = Counter(e.spacegroup for e in added)
    assert mixed.provenance["excluded_from_statistics"]["partially occupied (prior only)"] == len(added)
    assert mixed.provenance["excluded_from_statistics"]["conventional cell above max_volume"] == 1 + base.provenance[
        "excluded_from_statistics"
    ].get("conventional cell above max_volume", 0)
    for sg, table in mixed.per_spacegroup.items():
        old = base.per_spacegroup[sg]
        assert table.count == old.count + extra[sg] and table.ordered == old.ordered
        assert (table.n_elements_probs, table.element_probs, table.wyckoff_probs, table.n_sites_per_element_probs) == (
            old.n_elements_probs,
            old.element_probs,
            old.wyckoff_probs,
            old.n_sites_per_element_probs,
        )
    total = sum(mixed.per_spacegroup[sg].count for sg in mixed.spacegroups)
    for sg in mixed.spacegroups:
        assert mixed.prior[sg] == pytest.approx(mixed.per_spacegroup[sg].count / total)
    assert any(mixed.prior[sg] > base.prior[sg] for sg in extra)
    np.testing.assert_array_equal(mixed.volume_samples, base.volume_samples)


def test_wyckoff_sites_against_pymatgen_symmetrized_structures(statistics, mp40_dir):
    """Per entry: pymatgen's symmetrized conventional cell has the same Wyckoff names per element."""
    stats_part, _ = mp40_split(str(mp40_dir))
    rng = np.random.default_rng(4)
    other_group = 0
    sample = [stats_part[i] for i in rng.choice(len(stats_part), size=150, replace=False)]
    for entry in sample:
        analyzer = SpacegroupAnalyzer(entry.structure, symprec=0.1)
        if analyzer.get_space_group_number() != entry.spacegroup:
            other_group += 1  # the idealised cell gained symmetry at this tolerance
            continue
        symmetrized = analyzer.get_symmetrized_structure()
        reference = sorted(
            (str(sites[0].specie), symbol) for sites, symbol in zip(symmetrized.equivalent_sites, symmetrized.wyckoff_symbols)
        )
        assert sorted(entry.wyckoff_sites) == reference, entry.source_id
    assert other_group <= 0.02 * len(sample)


def test_per_spacegroup_tables_follow_the_definitions(statistics, mp40_dir):
    """Recount of the most common space groups; element counts from pymatgen compositions."""
    stats_part, _ = mp40_split(str(mp40_dir))
    by_sg = defaultdict(list)
    for entry in stats_part:
        by_sg[entry.spacegroup].append(entry)
    for sg in sorted(statistics.spacegroups, key=lambda g: -statistics.prior[g])[:4]:
        table = statistics.per_spacegroup[sg]
        entries = by_sg[sg]
        assert table.count == len(entries)
        n_elements = Counter(len(e.structure.composition.elements) for e in entries)
        assert table.n_elements_probs == pytest.approx(
            [n_elements[k + 1] / len(entries) for k in range(len(table.n_elements_probs))]
        )
        contains = Counter(str(el) for e in entries for el in e.structure.composition.elements)
        assert table.element_probs == pytest.approx({el: c / sum(contains.values()) for el, c in contains.items()})
        reps = [n for e in entries for n in Counter(el for el, _ in e.wyckoff_sites).values()]
        assert table.n_sites_per_element_probs == pytest.approx(
            [reps.count(k + 1) / len(reps) for k in range(len(table.n_sites_per_element_probs))]
        )
        names = Counter(name for e in entries for _, name in e.wyckoff_sites)
        assert table.wyckoff_probs == pytest.approx({n: c / sum(names.values()) for n, c in names.items()})
        mean_multiplicity = sum(int(name[:-1]) * p for name, p in table.wyckoff_probs.items())
        assert mean_multiplicity == pytest.approx(sum(e.crystal.n_sites for e in entries) / sum(reps))


def test_lattice_geometry_round_trips_and_v_atomic_follows_its_definition():
    """Matrix <-> parameters round trip, |det| = the closed-form volume, unit-volume cells have V = 1;
    V_atomic = Σ 4/3·π·((r_cov + r_vdW)/2)³ over the atoms, from PyXtal's radii read here directly."""
    rng = np.random.default_rng(2)
    for system, names in LATTICE_PARAMETER_NAMES.items():
        for _ in range(20):
            angles = {"alpha": rng.uniform(1.2, 1.9), "beta": rng.uniform(1.2, 1.9), "gamma": rng.uniform(1.2, 1.9)}
            free = np.array([rng.uniform(2, 12) if name in "abc" else angles[name] for name in names])
            params = full_lattice_parameters(system, free)
            matrix = lattice_matrix(*params)
            assert lattice_parameters(matrix) == pytest.approx(params, rel=1e-9)
            assert abs(np.linalg.det(matrix)) == pytest.approx(cell_volume(*params), rel=1e-9)
            np.testing.assert_allclose(free_parameters(system, params), free, rtol=1e-12)
            unit = full_lattice_parameters(system, unit_volume_parameters(system, params)) if names else params
            assert cell_volume(*unit) == pytest.approx(1.0 if names else cell_volume(*params), rel=1e-9)
            if names:
                assert unit_volume_cell(system, free) == pytest.approx(unit, rel=1e-9)
    symbols = ["Na", "Cl", "Cl", "O"]
    expected = sum(4 / 3 * np.pi * ((PyxtalElement(s).covalent_radius + PyxtalElement(s).vdw_radius) / 2) ** 3 for s in symbols)
    assert atomic_volume(symbols) == pytest.approx(expected, rel=1e-12)
    assert element_volume("Cl")[0] == 17
    assert atomic_volume(symbols) == pytest.approx(sum(element_volume(s)[1] for s in symbols), rel=1e-12)


def test_lattice_kde_samples_reproduce_the_unit_volume_parameters(statistics):
    """Two-sample KS per parameter: D below the 0.1% critical value plus 0.05 for the KDE's smoothing
    (Scott's bandwidth widens every marginal by a factor sqrt(1 + n^(-2/(d+4)))); means within 4 SE."""
    rng = np.random.default_rng(11)
    n_draws = 3000
    for system, data in statistics.lattice_samples.items():
        if system == "cubic":
            assert statistics.sample_lattice_parameters("cubic", rng) == pytest.approx((1, 1, 1, np.pi / 2, np.pi / 2, np.pi / 2))
            continue
        draws = []
        for _ in range(n_draws):
            params = statistics.sample_lattice_parameters(system, rng)
            assert cell_volume(*params) == pytest.approx(1.0, rel=1e-9)
            draws.append(free_parameters(system, params))
        draws = np.array(draws)
        n = len(data)
        critical = 1.95 * np.sqrt(1 / n + 1 / n_draws)
        for j, name in enumerate(LATTICE_PARAMETER_NAMES[system]):
            result = scipy_stats.ks_2samp(data[:, j], draws[:, j])
            assert result.statistic < critical + 0.05, (system, name, result)
            assert abs(draws[:, j].mean() - data[:, j].mean()) < 4 * data[:, j].std() / np.sqrt(n) + 0.02, (system, name)


def _assert_exact_for_statsmodels(statistics, spacegroup, rows, seed):
    """pdf equal to statsmodels' KDEMultivariateConditional on `rows`, draws following it (KS)."""
    kde = sm.nonparametric.KDEMultivariateConditional(
        endog=[rows[:, 1]], exog=[rows[:, 0]], dep_type="c", indep_type="c", bw="normal_reference"
    )
    _, bandwidth, limit = statistics.volume_kde(spacegroup)
    np.testing.assert_allclose(kde.bw, bandwidth, rtol=1e-12)
    assert limit == pytest.approx(rows[:, 0].max(), rel=1e-12)
    grid = np.linspace(1e-3, 6.0, 6001)
    rng = np.random.default_rng(seed)
    for v_atomic in np.percentile(rows[:, 0], [5, 35, 65, 95]):
        reference = kde.pdf(grid, np.full(len(grid), v_atomic))
        np.testing.assert_allclose(statistics.denseness_pdf(spacegroup, grid, v_atomic), reference, rtol=1e-9, atol=1e-12)
        cdf = np.cumsum(reference)
        cdf /= cdf[-1]
        draws = np.array([statistics.sample_denseness(spacegroup, v_atomic, rng) for _ in range(1000)])
        assert draws.min() > 0
        assert scipy_stats.kstest(draws, lambda x, cdf=cdf: np.interp(x, grid, cdf)).pvalue > 1e-3


def test_pooled_denseness_sampler_is_exact_for_statsmodels_conditional_kde(statistics):
    """A space group without its own volume KDE (0: none) draws from statsmodels' KDE of all rows."""
    assert not statistics.has_own_volume_kde(0)
    _assert_exact_for_statsmodels(statistics, 0, statistics.volume_samples, seed=5)


def test_per_spacegroup_volume_kde_is_statsmodels_on_that_spacegroups_structures(statistics, mp40_dir):
    """Several space groups with >= min_structures_volume_kde structures: own KDE, fitted on their own
    (V_atomic, f) rows recomputed here from the entries; one below the minimum: the pooled KDE."""
    stats_part, _ = mp40_split(str(mp40_dir))
    minimum = statistics.provenance["class_rule"]["min_structures_volume_kde"]
    rows = defaultdict(list)
    for entry in stats_part:
        symbols = [str(site.specie) for site in entry.structure]
        v_atomic = atomic_volume(symbols)
        rows[entry.spacegroup].append((v_atomic, entry.crystal.volume / v_atomic))
    own = sorted(sg for sg, r in rows.items() if len(r) >= minimum)
    assert len(own) >= 4 and sorted(statistics.volume_bandwidths) == own
    for i, sg in enumerate(sorted(own, key=lambda g: -len(rows[g]))[:4]):
        assert statistics.has_own_volume_kde(sg)
        _assert_exact_for_statsmodels(statistics, sg, np.array(rows[sg]), seed=20 + i)
    below = next(sg for sg in statistics.per_spacegroup if len(rows[sg]) < minimum)
    assert not statistics.has_own_volume_kde(below)
    grid = np.linspace(0.5, 4.0, 50)
    np.testing.assert_array_equal(statistics.denseness_pdf(below, grid, 300.0), statistics.denseness_pdf(0, grid, 300.0))
    assert statistics.v_atomic_limit(below) == statistics.volume_samples[:, 0].max()
    for sg in own:
        assert statistics.v_atomic_limit(sg) == pytest.approx(max(v for v, _ in rows[sg]), rel=1e-12)
    assert min(statistics.v_atomic_limit(sg) for sg in own) < statistics.volume_samples[:, 0].max()


def test_generated_volumes_reproduce_the_input_volumes(statistics):
    """Each row's V_atomic drawn through its space group's volume KDE, as the generator does."""
    v, groups = statistics.volume_samples, statistics.volume_spacegroups
    rng = np.random.default_rng(2)
    picks = rng.choice(len(v), size=3000)
    volumes = np.array([statistics.sample_denseness(groups[i], v[i, 0], rng) * v[i, 0] for i in picks])
    result = scipy_stats.ks_2samp(np.log(volumes), np.log(v[:, 0] * v[:, 1]))
    assert result.pvalue > 1e-3, result


def test_file_round_trip_json_and_gzip(statistics, tmp_path):
    for name in ("s.json", "s.json.gz"):
        path = statistics.save(tmp_path / name)
        back = Statistics.load(path)
        assert back.spacegroups == statistics.spacegroups
        assert back.prior == statistics.prior
        assert back.per_spacegroup == statistics.per_spacegroup
        assert back.volume_bandwidth == statistics.volume_bandwidth
        assert back.volume_bandwidths == statistics.volume_bandwidths and back.version == 2
        np.testing.assert_array_equal(back.volume_samples, statistics.volume_samples)
        np.testing.assert_array_equal(back.volume_spacegroups, statistics.volume_spacegroups)
        sg = next(iter(statistics.volume_bandwidths))
        assert back.sample_denseness(sg, 200.0, np.random.default_rng(3)) == statistics.sample_denseness(
            sg, 200.0, np.random.default_rng(3)
        )
        for system, data in statistics.lattice_samples.items():
            np.testing.assert_array_equal(back.lattice_samples[system], data)
        assert back.provenance["counts"] == statistics.provenance["counts"]
        a = [back.sample_lattice_parameters("monoclinic", np.random.default_rng(1)) for _ in range(3)]
        b = [statistics.sample_lattice_parameters("monoclinic", np.random.default_rng(1)) for _ in range(3)]
        assert a == b
    assert gzip.open(tmp_path / "s.json.gz").read(1) == b"{"
    # Version 1 (pooled volume KDE only) is still read: every space group on the pooled KDE.
    old = {k: v for k, v in statistics.to_json().items() if k not in ("volume_spacegroups", "volume_bandwidths")}
    (tmp_path / "v1.json").write_text(json.dumps({**old, "version": 1}))
    v1 = Statistics.load(tmp_path / "v1.json")
    assert v1.version == 1 and not v1.volume_bandwidths
    sg = next(iter(statistics.volume_bandwidths))
    assert v1.v_atomic_limit(sg) == statistics.volume_samples[:, 0].max()
    assert f"pooled for {len(v1.spacegroups)}" in v1.summary()


def test_bad_statistics_files_are_one_line_errors(statistics, tmp_path):
    good = statistics.to_json()
    cases = {
        "not_json.json": "this is not json",
        "other.json": json.dumps({"format": "something", "version": 1}),
        "future.json": json.dumps({**good, "version": 99}),
        "missing.json": json.dumps({k: v for k, v in good.items() if k != "volume_samples"}),
        "prior.json": json.dumps({**good, "prior": {"1": 0.5}}),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "pickled.json").write_bytes(pickle.dumps(statistics))
    expected = {
        "not_json.json": "not a readable JSON statistics file",
        "other.json": "not an xrdgen statistics file",
        "future.json": "format version 99",
        "missing.json": "missing field 'volume_samples'",
        "prior.json": "prior must cover exactly the class list",
        "pickled.json": "not a readable JSON statistics file",
    }
    for name, message in expected.items():
        with pytest.raises(UserError) as error:
            Statistics.load(tmp_path / name)
        assert str(error.value).startswith(str(tmp_path / name)) and message in str(error.value)
        assert "\n" not in str(error.value)


def test_stats_build_and_show_cli(mp40_dir, tmp_path, ray_local):
    with open(mp40_dir / "mineral_test.csv", newline="") as handle:
        rows = [row for _, row in zip(range(150), csv.DictReader(handle))]
    rows[10]["cif"] = "data_x\n_cell_length_a 3\n"  # one broken row
    source = tmp_path / "small.csv"
    with open(source, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "out" / "small.json.gz"
    runner = CliRunner()
    result = runner.invoke(
        app, ["stats", "build", str(source), "-o", str(out), "--seed", "3", "--set", "statistics.min_count_per_spacegroup=4"]
    )
    assert result.exit_code == 0, result.output
    assert "149 of 150 structures read, 1 skipped" in result.output
    statistics = Statistics.load(out)
    assert statistics.provenance["seed"] == 3 and statistics.provenance["skipped_total"] == 1
    assert len(statistics.spacegroups) >= 3
    base = tmp_path / "out" / "small"
    test_part = load_entries(f"{base}.test.json.gz")
    stats_part = load_entries(f"{base}.statistics_part.json.gz")
    assert len(test_part) + len(stats_part) == 149
    assert {e.source_id for e in test_part}.isdisjoint(e.source_id for e in stats_part)
    assert sum(s.count for s in statistics.per_spacegroup.values()) == len(stats_part)
    assert (tmp_path / "out" / "small.skipped.tsv").read_text().count("\n") == 1
    for kind in ("prior", "lattice", "denseness"):
        png = tmp_path / "out" / f"small.{kind}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000
    shown = runner.invoke(app, ["stats", "show", str(out)])
    assert shown.exit_code == 0 and "classes:" in shown.output and "class list:" in shown.output
