"""The embedded collection ("embedded"): real crystal structures shipped inside installed packages.

Nothing is downloaded. What is found depends on what is installed; every source is optional:

- pymatgen `analysis/prototypes/aflow_prototypes.json.gz`: the 288 AFLOW prototype structures
  (Mehl et al., AFLOW Library of Crystallographic Prototypes); the AFLOW label is the structure type.
- pyxtal `database/cifs/`: CIFs and POSCARs of inorganic and molecular crystals used by pyxtal.
- pymatgen `util/structures/*.json`: common structures (CsCl, Li2O, graphite, ...).
- ase `test/testdata/minerals/*.cif`: a few COD mineral CIFs, when ase ships its test data.

Small (a few hundred structures, most space groups seen once): good for a quick end-to-end run and
for tests, not for training a serious model. `--statistics default` is the shipped mp26k build
(`xrdgen.collection.shipped`); for your own, use an ICSD/COD export or the Materials Project CSVs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Optional

from xrdgen.collection.records import RawRecord
from xrdgen.jsonio import read_json


def _package_dir(name: str) -> Optional[Path]:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def aflow_prototype_records() -> list[RawRecord]:
    root = _package_dir("pymatgen")
    path = root / "analysis" / "prototypes" / "aflow_prototypes.json.gz" if root else None
    if path is None or not path.is_file():
        return []
    prototypes = read_json(path, "AFLOW prototypes")
    records = []
    for i, item in enumerate(prototypes):
        snl = item["snl"]
        label = item.get("tags", {}).get("aflow") or f"aflow-{i}"
        structure_dict = {k: v for k, v in snl.items() if k in ("lattice", "sites", "charge")}
        structure_dict.update({"@module": "pymatgen.core.structure", "@class": "Structure"})
        records.append(RawRecord(source_id=f"aflow:{label}", structure_dict=structure_dict, structure_type=label))
    return records


def pyxtal_cif_records() -> list[RawRecord]:
    root = _package_dir("pyxtal")
    folder = root / "database" / "cifs" if root else None
    if folder is None or not folder.is_dir():
        return []
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".cif", ".vasp"))
    return [RawRecord(source_id=f"pyxtal:{p.name}", path=str(p)) for p in files]


def pymatgen_structure_records() -> list[RawRecord]:
    root = _package_dir("pymatgen")
    folder = root / "util" / "structures" if root else None
    if folder is None or not folder.is_dir():
        return []
    return [
        RawRecord(source_id=f"pymatgen:{p.name}", structure_dict=read_json(p, "pymatgen structure"))
        for p in sorted(folder.glob("*.json"))
    ]


def ase_mineral_records() -> list[RawRecord]:
    root = _package_dir("ase")
    folder = root / "test" / "testdata" / "minerals" if root else None
    if folder is None or not folder.is_dir():
        return []
    return [RawRecord(source_id=f"ase:{p.name}", path=str(p)) for p in sorted(folder.glob("*.cif"))]


def embedded_records() -> list[RawRecord]:
    """Every embedded structure found in the installed packages, in a fixed order."""
    return aflow_prototype_records() + pyxtal_cif_records() + pymatgen_structure_records() + ase_mineral_records()
