"""Crystal collections: real mp40 CSVs and embedded structures, read on real Ray; broken files injected;
gzip sources, id deduplication, the entries cache and the shipped default statistics."""

from __future__ import annotations

import csv
import dataclasses
import gzip
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
from xrdgen.collection.cache import ReadCache
from xrdgen.collection.entries import load_entries, read_chunk, save_entries
from xrdgen.collection.reading import chunked, list_records, read_collection
from xrdgen.collection.shipped import DECIMALS, compact_entries, default_statistics
from xrdgen.config import CollectionConfig
from xrdgen.crystal import Crystal
from xrdgen.errors import UserError
from xrdgen.jsonio import read_json
from xrdgen.pipeline import resolve_statistics
from xrdgen.progress import Progress
from xrdgen.statistics.model import Statistics

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
        assert entry.crystal.volume / entry.crystal.n_sites == pytest.approx(
            original.volume / len(original), rel=1e-3
        )  # spglib idealises the cell
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
    assert all(
        e.spacegroup_file == int(r["space_group_number"])
        for e, r in zip(report.entries, [r for i, r in enumerate(rows) if i not in (3, 7)])
    )


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


def test_embedded_collection(ray_local):
    records = list_records("embedded")
    sources = {r.source_id.split(":")[0] for r in records}
    assert {"aflow", "pyxtal", "pymatgen"} <= sources
    assert sum(r.source_id.startswith("aflow:") for r in records) == 288
    report = read_collection_parallel("embedded", CollectionConfig(), progress=False)
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
        assert (a.spacegroup, a.spacegroup_file, a.ordered, a.wyckoff_sites) == (
            b.spacegroup,
            b.spacegroup_file,
            b.ordered,
            b.wyckoff_sites,
        )
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
    with pytest.raises(UserError, match="empty_dir: no .cif, .cif.gz, .csv or .csv.gz files"):
        list_records(tmp_path / "empty_dir")
    monkeypatch.setattr(sys, "argv", ["xrdgen", "stats", "build", str(tmp_path / "missing"), "-o", str(tmp_path / "s.json")])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {tmp_path / 'missing'}: no such file or directory (expected a CIF directory, a CSV, or 'embedded')"
    ]


def _write_csv(path: Path, rows: list[dict]) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _same_crystals(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x.spacegroup, x.spacegroup_file, x.wyckoff_sites) == (y.spacegroup, y.spacegroup_file, y.wyckoff_sites)
        np.testing.assert_array_equal(x.crystal.frac_coords, y.crystal.frac_coords)


def test_gzip_csv_and_cif_sources_read_like_plain_ones(mp40_dir, tmp_path):
    rows = _mp40_rows(mp40_dir, 16)
    plain = read_collection(_write_csv(tmp_path / "rows.csv", rows), CollectionConfig(), progress=False)
    packed = read_collection(_write_csv(tmp_path / "rows.csv.gz", rows), CollectionConfig(), progress=False)
    assert plain.counts["read"] == 16
    _same_crystals(plain.entries, packed.entries)
    folder = tmp_path / "cifs" / "nested"
    folder.mkdir(parents=True)
    for i, row in enumerate(rows):  # half plain, half gzip, as mixed exports come
        if i % 2:
            with gzip.open(folder / f"{row['material_id']}.cif.gz", "wt") as handle:
                handle.write(row["cif"])
        else:
            (folder / f"{row['material_id']}.cif").write_text(row["cif"])
    records = list_records(tmp_path / "cifs")
    assert sorted(r.record_id for r in records) == sorted(row["material_id"] for row in rows)
    from_cifs = read_collection(tmp_path / "cifs", CollectionConfig(), progress=False)
    by_id = {Path(e.source_id).name.split(".cif")[0]: e for e in from_cifs.entries}
    assert from_cifs.counts["read"] == 16
    for entry in plain.entries:
        twin = by_id[entry.source_id.split(":")[-1]]
        assert twin.spacegroup == entry.spacegroup and twin.wyckoff_sites == entry.wyckoff_sites
    single = read_collection(next(folder.glob("*.cif.gz")), CollectionConfig(), progress=False)
    assert single.counts["read"] == 1
    (tmp_path / "broken.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="broken.csv.gz: not a readable"):
        list_records(tmp_path / "broken.csv.gz")


def test_repeated_ids_are_read_once_when_asked(mp40_dir, tmp_path):
    rows = _mp40_rows(mp40_dir, 20)
    first = _write_csv(tmp_path / "a.csv.gz", rows[:12])
    second = _write_csv(tmp_path / "b.csv.gz", rows[8:])  # rows 8..11 in both files
    config = CollectionConfig(id_column="material_id", chunk_size=6)
    report = read_collection([first, second], config, progress=False)
    assert report.counts["read"] == 20 and report.counts["duplicates"] == 4 and report.counts["records"] == 24
    repeated = {row["material_id"] for row in rows[8:12]}
    assert {d.source_id for d in report.duplicates} == {f"{second}:{i}" for i in repeated}
    assert all(f"also in {first}:" in d.reason for d in report.duplicates)
    assert {e.source_id for e in report.entries if e.source_id.split(":")[-1] in repeated} == {f"{first}:{i}" for i in repeated}
    assert "4 duplicate ids left out" in report.summary()
    assert report.skipped_report().count("duplicate id") == 4
    assert read_collection([first, second], CollectionConfig(), progress=False).counts["read"] == 24  # not asked: all read
    with pytest.raises(UserError, match="a.csv.gz: no 'icsd_code' column"):
        read_collection(first, CollectionConfig(id_column="icsd_code"), progress=False)
    for folder in ("export1", "export2"):  # a CIF file's id is its name
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{rows[0]['material_id']}.cif").write_text(rows[0]["cif"])
    cifs = read_collection([tmp_path / "export1", tmp_path / "export2"], config, progress=False)
    assert cifs.counts["read"] == 1 and cifs.counts["duplicates"] == 1


def test_read_cache_is_reused_only_for_the_same_read(mp40_dir, tmp_path):
    source = _write_csv(tmp_path / "rows.csv", _mp40_rows(mp40_dir, 10))
    config = CollectionConfig()
    report = read_collection(source, config, progress=False)
    cache = ReadCache(tmp_path / "cache.json.gz", [source], config)
    assert cache.load() is None
    cache.save(report)
    cache.save_group_keys("auto", [f"g{i % 3}" for i in range(10)])
    again = ReadCache(tmp_path / "cache.json.gz", [source], config)
    back = again.load()
    _same_crystals(report.entries, back.entries)
    assert back.source == report.source and again.group_keys("auto") == [f"g{i % 3}" for i in range(10)]
    assert again.group_keys("prototype") is None
    assert ReadCache(tmp_path / "cache.json.gz", [source], CollectionConfig(symprec=0.01)).load() is None
    _write_csv(source, _mp40_rows(mp40_dir, 11))  # the source changed
    assert ReadCache(tmp_path / "cache.json.gz", [source], config).load() is None


def test_progress_lines_give_rate_and_time_left(capsys):
    progress = Progress(40, "reading structures", every_s=0.0)
    for _ in range(4):
        progress.update(10)
    progress.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("reading structures: 40/40 structures (100 %)")
    assert "/s," in lines[0] and "min left" in lines[0]


def test_compact_test_part_keeps_what_simulation_needs(mp40_dir, tmp_path, ray_local):
    entries = mp40_report(str(mp40_dir)).entries[:40]
    disordered = Crystal(
        entries[0].crystal.lattice,
        entries[0].crystal.frac_coords,
        entries[0].crystal.numbers,
        np.full(entries[0].crystal.n_sites, 0.5),
        entries[0].spacegroup,
    )
    entries = entries + [dataclasses.replace(entries[0], crystal=disordered, ordered=False, wyckoff_sites=[])]
    full = save_entries(entries, tmp_path / "full.json.gz")
    compact = compact_entries(entries, tmp_path / "compact.json.gz", {"part": "test"})
    assert compact.stat().st_size < 0.8 * full.stat().st_size
    for a, b in zip(entries, load_entries(compact)):
        assert (a.source_id, a.spacegroup, a.spacegroup_file, a.ordered) == (
            b.source_id,
            b.spacegroup,
            b.spacegroup_file,
            b.ordered,
        )
        np.testing.assert_allclose(b.crystal.lattice, a.crystal.lattice, atol=0.6 * 10**-DECIMALS)
        np.testing.assert_allclose(b.crystal.frac_coords, a.crystal.frac_coords, atol=0.6 * 10**-DECIMALS)
        np.testing.assert_array_equal(b.crystal.numbers, a.crystal.numbers)
        np.testing.assert_array_equal(b.crystal.occupancies, a.crystal.occupancies)


def test_shipped_default_statistics(tmp_path):
    """`--statistics default`: ≥ 100 classes from mp26k + ICSD metadata, licences inside, a few MB."""
    stats_path, test_path = default_statistics()
    assert resolve_statistics("default") == (stats_path, test_path)
    assert resolve_statistics(tmp_path / "s.json.gz") == (tmp_path / "s.json.gz", None)
    assert stats_path.stat().st_size + test_path.stat().st_size < 5e6
    statistics = Statistics.load(stats_path)
    assert len(statistics.spacegroups) >= 100
    provenance = statistics.provenance
    licences = {source["name"]: source["licence"] for source in provenance["shipped_sources"]}
    assert licences["mp26k"].startswith("CC-BY 4.0") and licences["db_metadata (ICSD)"] == "MIT"
    assert provenance["counts"]["duplicates"] == 1369 and provenance["rebuild"] == "make default-statistics"
    test = load_entries(test_path)
    assert len(test) == provenance["counts"]["test_part"]
    in_classes = sum(e.spacegroup in set(statistics.spacegroups) for e in test)
    assert in_classes >= 0.8 * len(test)
    meta = read_json(test_path, "entries")["meta"]
    assert meta["part"] == "test" and meta["statistics"] == stats_path.name


def test_missing_shipped_default_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr("xrdgen.collection.shipped.package_data_dir", lambda: tmp_path)
    with pytest.raises(UserError, match="the shipped default statistics are missing .*make default-statistics"):
        resolve_statistics("default")
