"""Crystal collections: real mp40 CSVs and embedded structures, read on real Ray; broken files injected."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import spglib
from _collection_cache import mp40_report
from pymatgen.core import Structure
from pyxtal import pyxtal

from services.collection_reader import ray_map_chunks, read_collection_parallel
from xrdgen.cli import main
from xrdgen.collection.entries import load_entries, read_chunk, save_entries
from xrdgen.collection.reading import chunked, list_records, read_collection
from xrdgen.config import CollectionConfig
from xrdgen.errors import UserError

csv.field_size_limit(sys.maxsize)


def _mp40_rows(mp40_dir: Path, n: int) -> list[dict]:
    with open(mp40_dir / "random_split_test.csv", newline="") as handle:
        return [row for _, row in zip(range(n), csv.DictReader(handle))]


def test_mp40_read_on_ray_keeps_every_structure_and_both_labels(mp40_dir, ray_local):
    report = mp40_report(str(mp40_dir))
    counts = report.counts
    assert counts["records"] == 1953 and counts["read"] == 1953 and counts["skipped"] == 0
    assert counts["with_file_label"] == 1953
    # Materials Project labels come from spglib at a tolerance close to ours: few disagreements, counted.
    assert counts["label_disagreements"] == sum(e.spacegroup != e.spacegroup_file for e in report.entries)
    assert counts["label_disagreements"] <= 0.01 * counts["read"]
    assert len({e.source_id for e in report.entries}) == 1953


def test_conventional_cells_keep_the_crystal(mp40_dir, ray_local):
    """Against pymatgen/spglib on the original CIF: same density, same space group, standard cell."""
    report = mp40_report(str(mp40_dir))
    by_id = {e.source_id: e for e in report.entries}
    rows = _mp40_rows(mp40_dir, 60)
    for row in rows:
        entry = by_id[f"{mp40_dir / 'random_split_test.csv'}:{row['material_id']}"]
        original = Structure.from_str(row["cif"], fmt="cif")
        assert entry.crystal.volume / entry.crystal.n_sites == pytest.approx(original.volume / len(original), rel=1e-3)  # spglib idealises the cell
        assert entry.structure.composition.reduced_formula == original.composition.reduced_formula
        cell = (entry.crystal.lattice, entry.crystal.frac_coords, entry.crystal.numbers)
        assert spglib.get_symmetry_dataset(cell, symprec=0.1).number == entry.spacegroup
        expected = spglib.get_symmetry_dataset(
            (original.lattice.matrix, original.frac_coords, [s.specie.Z for s in original]), symprec=0.1
        )
        assert entry.spacegroup == expected.number
        assert len(entry.crystal.numbers) == len(expected.std_types)
        # Wyckoff multiplicities add up to the atoms of the conventional cell
        assert sum(int(name[:-1]) for _, name in entry.wyckoff_sites) == entry.crystal.n_sites


def test_wyckoff_sites_match_pyxtal_from_seed(mp40_dir, ray_local):
    """The original took Wyckoff occupations from pyxtal's from_seed; ours come from spglib."""
    entries = mp40_report(str(mp40_dir)).entries
    rng = np.random.default_rng(7)
    checked = 0
    for i in rng.choice(len(entries), size=30, replace=False):
        entry = entries[i]
        crystal = pyxtal()
        crystal.from_seed(entry.structure, tol=0.1)
        if crystal.group.number != entry.spacegroup:
            continue  # pyxtal settled on another group at this tolerance: nothing to compare
        reference = sorted((str(site.specie), f"{site.wp.multiplicity}{site.wp.letter}") for site in crystal.atom_sites)
        assert sorted(entry.wyckoff_sites) == reference, entry.source_id
        checked += 1
    assert checked >= 25


def _write_cif_dir(root: Path, rows: list[dict]) -> None:
    for i, row in enumerate(rows):
        sub = root / f"batch{i % 3}"  # nested, as ICSD/COD exports are
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{row['material_id']}.cif").write_text(row["cif"])


def _absurd_cif(cif: str) -> str:
    """The same CIF with every cell length divided by 5 (125x denser than any solid)."""
    out = []
    for line in cif.splitlines():
        if line.startswith("_cell_length_"):
            tag, value = line.split()
            line = f"{tag}   {float(value) / 5:.6f}"
        out.append(line)
    return "\n".join(out) + "\n"


def _no_atoms_cif(cif: str) -> str:
    """The CIF cut before its atom-site loop."""
    return cif[: cif.index("loop_\n _atom_site")] if "loop_\n _atom_site" in cif else cif.split("_atom_site")[0]


def test_broken_cifs_are_skipped_counted_and_listed(mp40_dir, tmp_path, ray_local):
    rows = _mp40_rows(mp40_dir, 30)
    _write_cif_dir(tmp_path / "export", rows)
    broken = tmp_path / "export" / "broken"
    broken.mkdir()
    (broken / "empty.cif").write_text("")
    (broken / "garbage.cif").write_text("this is not a CIF at all\n<html>404</html>\n")
    (broken / "binary.cif").write_bytes(bytes(range(256)) * 8)
    (broken / "absurd.cif").write_text(_absurd_cif(rows[0]["cif"]))
    (broken / "no_atoms.cif").write_text(_no_atoms_cif(rows[1]["cif"]))
    (broken / "truncated.cif").write_text(rows[2]["cif"][: len(rows[2]["cif"]) // 3])

    report = read_collection_parallel(tmp_path / "export", CollectionConfig(chunk_size=8), progress=False)
    read_ids = {Path(e.source_id).stem for e in report.entries}
    assert read_ids == {row["material_id"] for row in rows}  # every good entry is used
    reasons = {Path(s.source_id).stem: s.reason for s in report.skipped}
    assert set(reasons) == {"empty", "garbage", "binary", "absurd", "no_atoms", "truncated"}
    assert reasons["absurd"].startswith("absurd cell")
    assert report.counts["skipped"] == 6
    listing = report.skipped_report()
    assert listing.count("\n") == 6 and "absurd.cif\tabsurd cell" in listing
    assert "skipped (" in report.summary()


def test_broken_csv_rows_are_skipped_and_the_rest_kept(mp40_dir, tmp_path):
    rows = _mp40_rows(mp40_dir, 12)
    rows[3] = {**rows[3], "cif": "data_broken\n_cell_length_a 1\n"}
    rows[7] = {**rows[7], "cif": ""}
    path = tmp_path / "some.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report = read_collection(path, CollectionConfig(chunk_size=5), progress=False)
    assert report.counts["read"] == 10 and report.counts["skipped"] == 2
    assert {s.source_id.split(":")[-1] for s in report.skipped} == {rows[3]["material_id"], rows[7]["material_id"]}
    assert all(e.spacegroup_file == int(r["space_group_number"]) for e, r in zip(report.entries, [r for i, r in enumerate(rows) if i not in (3, 7)]))


def test_ray_and_serial_reading_agree(mp40_dir, ray_local):
    config = CollectionConfig(chunk_size=7)
    records = list_records(mp40_dir / "mineral_test.csv")[:40]
    serial = [read_chunk(chunk, config) for chunk in chunked(records, 7)]
    parallel = list(ray_map_chunks(chunked(records, 7), config, progress=False))
    assert [e.source_id for part, _ in serial for e in part] == [e.source_id for part, _ in parallel for e in part]
    for (a, _), (b, _) in zip(serial, parallel):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x.crystal.frac_coords, y.crystal.frac_coords)
            assert x.wyckoff_sites == y.wyckoff_sites


def test_embedded_default_collection(ray_local):
    records = list_records("default")
    sources = {r.source_id.split(":")[0] for r in records}
    assert {"aflow", "pyxtal", "pymatgen"} <= sources
    assert sum(r.source_id.startswith("aflow:") for r in records) == 288
    report = read_collection_parallel("default", CollectionConfig(), progress=False)
    assert report.counts["read"] >= 0.97 * len(records)
    aflow = [e for e in report.entries if e.source_id.startswith("aflow:")]
    # the AFLOW label names the space group: AB_hP6_154_a_b -> 154, and spglib must agree
    agree = sum(int(e.structure_type.split("_")[2]) == e.spacegroup for e in aflow)
    assert agree >= 0.95 * len(aflow)  # a few slightly distorted prototypes gain symmetry at symprec=0.1
    assert report.counts["partially_occupied"] >= 1  # a disordered CIF is kept and flagged
    assert report.counts["spacegroups"] > 80


def test_entries_file_round_trip(mp40_dir, tmp_path, ray_local):
    entries = mp40_report(str(mp40_dir)).entries[:25]
    path = save_entries(entries, tmp_path / "part.test.json.gz", {"part": "test"})
    back = load_entries(path)
    assert [e.source_id for e in back] == [e.source_id for e in entries]
    for a, b in zip(entries, back):
        np.testing.assert_allclose(a.crystal.lattice, b.crystal.lattice)
        np.testing.assert_array_equal(a.crystal.numbers, b.crystal.numbers)
        assert (a.spacegroup, a.spacegroup_file, a.ordered, a.wyckoff_sites) == (b.spacegroup, b.spacegroup_file, b.ordered, b.wyckoff_sites)
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(UserError, match="bad.json: not an xrdgen entries file"):
        load_entries(tmp_path / "bad.json")


def test_bad_sources_are_one_line_errors(tmp_path, monkeypatch, capsys):
    with pytest.raises(UserError, match="no such file or directory"):
        list_records(tmp_path / "missing")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="x.csv: no 'cif' column"):
        list_records(tmp_path / "x.csv")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(UserError, match="no .cif files"):
        list_records(tmp_path / "empty_dir")
    monkeypatch.setattr(sys, "argv", ["xrdgen", "stats", "build", str(tmp_path / "missing"), "-o", str(tmp_path / "s.json")])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {tmp_path / 'missing'}: no such file or directory (expected a CIF directory, a CSV, or 'default')"
    ]
