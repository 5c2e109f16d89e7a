"""The statistics shipped in the package: what `--statistics default` means.

`make run`, configs/cluster.yaml and the RayJob train on `default` from a fresh clone, where no
collection is at hand and building statistics at run time would cost minutes. So the package
carries one statistics build (`xrdgen stats build` of mp26k and the ICSD metadata, the command is
`make default-statistics`) and its held-out test part, in package data (xrdgen/data/):

- `default_statistics.json.gz`       the statistics file, its provenance extended by
                                     `SHIPPED_SOURCES` (what the data are, licences, citations);
- `default_statistics.test.json.gz`  the held-out test part in compact form (`compact_entries`).

Compact form: the test part is only simulated (never used for statistics), so the entries keep
the conventional cell, elements, occupancies (only when partial) and labels, with cell lengths
and fractional coordinates rounded to `DECIMALS` decimals (1e-5 Å on a 10 Å cell: invisible in a
pattern on a 0.01° grid), and drop the Wyckoff sites. The file is an ordinary entries file
(`load_entries` reads it).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

from xrdgen.collection.entries import CollectionEntry, load_entries_file
from xrdgen.errors import UserError
from xrdgen.jsonio import read_json, write_json

DEFAULT_STATISTICS = "default"
STATISTICS_NAME = "default_statistics.json.gz"
TEST_NAME = "default_statistics.test.json.gz"
DECIMALS = 5
REBUILD = "make default-statistics"

# The public sources of the shipped default (../shared/data, read their SOURCE.md), recorded in its
# provenance: the licences travel with the file.
SHIPPED_SOURCES = [
    {
        "name": "mp26k",
        "what": "25,985 Materials Project structures (MPTS-52 test/val, binary/ternary MP-20 val/test), P1 CIFs",
        "licence": "CC-BY 4.0 (Materials Project)",
        "cite": "A. Jain et al., APL Materials 1, 011002 (2013)",
        "via": "github.com/SymmetryAdvantage/WyckoffTransformer (Apache-2.0), data/, commit 507e8f1",
    },
    {
        "name": "db_metadata (ICSD)",
        "what": "space group and reduced formula of 143,523 ICSD entries (no coordinates)",
        "licence": "MIT",
        "via": "github.com/CederGroupHub/dara, src/dara/data/, commit 621e38a",
    },
]


def package_data_dir() -> Path:
    """xrdgen/data of the installed package (the source tree for an editable install)."""
    return Path(str(files("xrdgen").joinpath("data")))


def default_statistics() -> tuple[Path, Path]:
    """(statistics file, held-out test part) shipped in the package; a missing one is a `UserError`."""
    folder = package_data_dir()
    paths = folder / STATISTICS_NAME, folder / TEST_NAME
    for path in paths:
        if not path.is_file():
            raise UserError(f"{path}: the shipped default statistics are missing (rebuild them with `{REBUILD}`)")
    return paths


def compact_entry(entry: CollectionEntry) -> dict:
    """`CollectionEntry.to_json` rounded to `DECIMALS`, without Wyckoff sites and unit occupancies."""
    data = entry.to_json()
    data["lattice"] = [[round(x, DECIMALS) for x in row] for row in data["lattice"]]
    data["frac_coords"] = [[round(x, DECIMALS) for x in row] for row in data["frac_coords"]]
    if entry.crystal.is_ordered:
        data.pop("occupancies")
    data.pop("wyckoff_sites")
    return data


def compact_entries(entries: Sequence[CollectionEntry], path: Path, meta: dict) -> Path:
    """An entries file of `entries` in compact form (module docstring)."""
    payload = {"format": "xrdgen-entries", "version": 1, "meta": meta, "entries": [compact_entry(e) for e in entries]}
    return write_json(path, payload)


def ship(statistics_file: Path, test_file: Path, folder: Path | None = None) -> tuple[Path, Path]:
    """Copy a statistics build into the package as the shipped default (statistics + compact test part).

    The statistics' provenance gains `shipped_sources` (licences) and the test part's name.
    """
    folder = folder or package_data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    data = read_json(statistics_file, "statistics")
    if not isinstance(data, dict) or data.get("format") != "xrdgen-statistics":
        raise UserError(f"{statistics_file}: not an xrdgen statistics file")
    data.setdefault("provenance", {}).update(
        {"shipped_sources": SHIPPED_SOURCES, "test_part_file": TEST_NAME, "rebuild": REBUILD}
    )
    stats_out, test_out = folder / STATISTICS_NAME, folder / TEST_NAME
    write_json(stats_out, data)
    entries, meta = load_entries_file(test_file)
    compact_entries(entries, test_out, {**meta, "statistics": STATISTICS_NAME, "compact_decimals": DECIMALS})
    return stats_out, test_out
