"""ICSD-calibrated statistics: the metadata reader, steps 1-3 from the ICSD metadata and steps 4-7
from mp40's statistics part, the class list rule with its reasons, and χ² tests of the generator's
draws (space groups, number of unique elements) against the ICSD metadata itself.

Expected values are counted here from the raw JSON (chemical-system keys "Fe-O" give the unique
elements), independently of `read_metadata`, which uses the formulas.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from _collection_cache import mp40_split
from conftest import shared_data
from pyxtal.database.element import Element as PyxtalElement
from scipy import stats as scipy_stats

from xrdgen.config import GenerationConfig, StatisticsConfig
from xrdgen.errors import UserError
from xrdgen.generation.generator import Generator
from xrdgen.statistics.build import CLASS, FEW_ENTRIES, FEW_STRUCTURES, build_statistics, class_list, classes_for_min_counts
from xrdgen.statistics.metadata import read_metadata
from xrdgen.statistics.model import Statistics

ICSD = "db_metadata/icsd_filtered_info_2025_v3.json.gz"
N_CRYSTALS = 3000
P_MIN = 1e-3  # fixed seeds: a p-value below this is a real disagreement, not bad luck


@pytest.fixture(scope="module")
def icsd_raw() -> dict:
    with gzip.open(shared_data(ICSD), "rt") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def icsd_counts(icsd_raw):
    """Per space group: entries, Counter(number of unique elements), Counter(element), from the keys."""
    entries, n_elements, elements = Counter(), defaultdict(Counter), defaultdict(Counter)
    for system, rows in icsd_raw.items():
        symbols = system.split("-")
        placeholder = any(s in ("M", "X", "L") for s in symbols)
        for row in rows:
            entries[row[2]] += 1
            if not placeholder:
                n_elements[row[2]][len(symbols)] += 1
                elements[row[2]].update(symbols)
    return entries, n_elements, elements


@pytest.fixture(scope="module")
def calibrated(mp40_dir, ray_local, icsd_raw):
    stats_part, _ = mp40_split(str(mp40_dir))
    config = StatisticsConfig()  # 50 ICSD entries, 10 ordered structures, as shipped
    metadata = read_metadata(shared_data(ICSD))
    return stats_part, config, metadata, build_statistics(stats_part, config, {"source": "mp40 (test)"}, metadata)


def _has_radii(symbol: str) -> bool:
    """PyXtal has both radii V_atomic needs (read directly, not through xrdgen.geometry)."""
    element = PyxtalElement(symbol)
    return element.covalent_radius is not None and element.vdw_radius is not None


def test_reader_counts_every_entry_in_both_layouts(icsd_counts):
    entries, n_elements, elements = icsd_counts
    metadata = read_metadata(shared_data(ICSD))
    assert metadata.entries == dict(entries) and metadata.total == 143_523
    assert sum(c >= 50 for c in metadata.entries.values()) == 144  # the method's class list size
    assert metadata.provenance["entries_without_element_statistics"] == 20  # "M", "X", "L" placeholders
    for sg in (2, 14, 62, 225, 230):
        total = sum(n_elements[sg].values())
        assert metadata.n_elements_probs(sg) == pytest.approx(
            [n_elements[sg][k] / total for k in range(1, max(n_elements[sg]) + 1)]
        )
        assert metadata.element_counts(sg) == elements[sg]
    mp = read_metadata(shared_data("db_metadata/mp_struct_info.json.gz"))  # the other layout: key = formula
    assert mp.total == 132_285 and len(mp.entries) == 228


def test_malformed_metadata_is_a_one_line_error_naming_the_file(tmp_path):
    cases = {
        "list.json": "[1, 2]",
        "row.json": json.dumps({"Fe-O": [["FeO", "1", 225]]}),
        "sg.json": json.dumps({"Fe-O": [["FeO", "1", 231, 0.0]]}),
        "notlist.json": json.dumps({"Fe-O": "FeO"}),
        "text.json": "not json",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(UserError) as error:
            read_metadata(tmp_path / name)
        message = str(error.value)
        assert message.startswith(str(tmp_path / name)) and "\n" not in message, message
    with pytest.raises(UserError, match="231 is not a number 1..230"):
        read_metadata(tmp_path / "sg.json")


def test_steps_1_to_3_from_the_metadata_4_to_7_from_the_structures(calibrated, icsd_counts):
    stats_part, config, metadata, statistics = calibrated
    entries, n_elements, elements = icsd_counts
    plain = build_statistics(stats_part, config)
    ordered = Counter(e.spacegroup for e in stats_part if e.ordered and e.crystal.volume <= config.max_volume)
    expected_classes = sorted(sg for sg in entries if entries[sg] >= 50 and ordered[sg] >= config.min_structures_per_class)
    assert statistics.spacegroups == expected_classes and len(expected_classes) >= 15
    total = sum(entries[sg] for sg in expected_classes)
    for sg in expected_classes:
        table = statistics.per_spacegroup[sg]
        assert statistics.prior[sg] == pytest.approx(entries[sg] / total)
        assert table.metadata_count == entries[sg] and table.count == plain.per_spacegroup[sg].count
        k = n_elements[sg]
        assert table.n_elements_probs == pytest.approx([k[i] / sum(k.values()) for i in range(1, max(k) + 1)])
        usable = {e: c for e, c in elements[sg].items() if _has_radii(e)}
        assert table.element_probs == pytest.approx({e: c / sum(usable.values()) for e, c in usable.items()})
        assert table.wyckoff_probs == plain.per_spacegroup[sg].wyckoff_probs
        assert table.n_sites_per_element_probs == plain.per_spacegroup[sg].n_sites_per_element_probs
    assert statistics.provenance["metadata"]["elements_without_radii"]
    assert not any(_has_radii(e) for e in statistics.provenance["metadata"]["elements_without_radii"])
    np.testing.assert_array_equal(statistics.volume_samples, plain.volume_samples)
    assert statistics.volume_bandwidths == plain.volume_bandwidths
    assert classes_for_min_counts(statistics, (50,))[50] == len(expected_classes)


def test_class_list_gives_a_reason_for_every_space_group(calibrated, icsd_counts):
    stats_part, config, metadata, statistics = calibrated
    entries, _, _ = icsd_counts
    decisions = {d.spacegroup: d for d in class_list(stats_part, config, metadata)}
    assert set(decisions) == set(entries) | {e.spacegroup for e in stats_part}
    assert [sg for sg, d in sorted(decisions.items()) if d.is_class] == statistics.spacegroups
    kinds = Counter(d.kind for d in decisions.values())
    assert kinds[CLASS] and kinds[FEW_ENTRIES] and kinds[FEW_STRUCTURES]
    for sg, d in decisions.items():
        assert d.prior_count == entries.get(sg, 0) and str(d.prior_count) in d.reason
        if d.kind == FEW_ENTRIES:
            assert entries.get(sg, 0) < 50
        elif d.kind == FEW_STRUCTURES:
            assert entries[sg] >= 50 and d.ordered < config.min_structures_per_class
    assert statistics.provenance["class_decisions"] == {str(sg): [d.kind, d.reason] for sg, d in decisions.items()}
    summary = statistics.summary()
    assert f"class list: {len(statistics.spacegroups)} classes" in summary and Path(ICSD).name in summary
    assert f"{kinds[FEW_STRUCTURES]} space groups with too few ordered structures" in summary and "volume KDE: own for" in summary
    back = Statistics.from_json(json.loads(json.dumps(statistics.to_json())))
    assert back.per_spacegroup == statistics.per_spacegroup and back.summary() == summary


def _chi2_p(observed: Counter, probs: dict, n: int) -> tuple[float, int]:
    """χ² statistic and degrees of freedom; cells expecting < 5 pooled into one."""
    big = [k for k, p in probs.items() if n * p >= 5]
    o = [observed.get(k, 0) for k in big] + [n - sum(observed.get(k, 0) for k in big)]
    e = [n * probs[k] for k in big] + [n - sum(n * probs[k] for k in big)]
    if e[-1] < 1e-9:
        o, e = o[:-1], e[:-1]
    o, e = np.array(o, float), np.array(e, float)
    return float(np.sum((o - e) ** 2 / e)), len(e) - 1


def test_generated_crystals_follow_the_icsd_metadata(calibrated, icsd_counts):
    """χ²: drawn space groups against the ICSD prior over the class list; every draw of the number
    of unique elements, per space group, against the ICSD's distribution for that space group."""
    stats_part, _, _, statistics = calibrated
    entries, n_elements, _ = icsd_counts
    generator = Generator(statistics, GenerationConfig(), seed=21, record_attempts=True)
    crystals = generator.generate_many(N_CRYSTALS)
    total = sum(entries[sg] for sg in statistics.spacegroups)
    chi2, dof = _chi2_p(
        Counter(c.spacegroup for c in crystals), {sg: entries[sg] / total for sg in statistics.spacegroups}, N_CRYSTALS
    )
    assert scipy_stats.chi2.sf(chi2, dof) > P_MIN, (chi2, dof)

    draws = defaultdict(Counter)
    for attempt in generator.attempts:
        if attempt.n_elements_drawn:
            draws[attempt.spacegroup][attempt.n_elements] += 1
    chi2, dof = 0.0, 0
    for sg, observed in draws.items():
        k = n_elements[sg]
        c, d = _chi2_p(observed, {i: k[i] / sum(k.values()) for i in k}, sum(observed.values()))
        chi2, dof = chi2 + c, dof + d
    assert dof >= 20 and scipy_stats.chi2.sf(chi2, dof) > P_MIN, (chi2, dof)
    # The test can tell: the same draws against the structures' own distribution (mp40: mostly binaries
    # and ternaries) fail it.
    plain = build_statistics(stats_part, StatisticsConfig())
    chi2, dof = 0.0, 0
    for sg, observed in draws.items():
        probs = {i + 1: p for i, p in enumerate(plain.per_spacegroup[sg].n_elements_probs)}
        c, d = _chi2_p(observed, {**probs, **{i: 1e-9 for i in observed if i not in probs}}, sum(observed.values()))
        chi2, dof = chi2 + c, dof + d
    assert scipy_stats.chi2.sf(chi2, dof) < 1e-6
