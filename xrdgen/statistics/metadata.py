"""Space group and formula of every entry of a crystal database (no coordinates): the ICSD's own
space-group prior, number of unique elements and element probabilities per space group.

Why: the method's supplementary S1 takes its first three steps from the ICSD — (1) the space-group
prior, (2) the number of unique elements per space group, (3) the element probabilities per space
group. The ICSD's structures are licensed, but space group and formula of every entry are public
(`../shared/data/db_metadata`, from CederGroupHub/dara, MIT). With them, steps 1-3 follow the ICSD
while steps 4-7 (Wyckoff occupation, lattice KDE, volume KDE) come from the structures we have
(`build.py`).

Two file layouts (JSON object, gzip when the name ends in .gz), told apart per entry:

- ICSD and COD: key = chemical system ("Fe-O"), value = list of
  ``[reduced_formula, database_id, space_group_number, e_above_hull_or_null]``;
- Materials Project: key = reduced formula, value = list of
  ``[e_above_hull, [space_group_symbol, space_group_number]]``.

Per space group g, over its N_g entries (`Metadata`):

- ``entries[g] = N_g`` -> P(g) ∝ N_g over the class list;
- ``n_elements[g][k]`` = entries whose formula has k unique elements -> P(k | g) = n_elements[g][k] / Σ_k;
- ``elements[g][e]`` = entries whose formula contains e -> P(e | g) ∝ elements[g][e] (an element
  counts once per entry, as in `build.py`).

Unique elements are the element symbols of the formula (``[A-Z][a-z]?``). An entry naming a
placeholder that is no element ("M", "X", "L": 20 ICSD entries) counts for the prior only.
Partially occupied entries (fractional formulas) count like any other: the prior of the original
was counted over all structures too. The metadata carries no cell, so the statistics' volume and
Wyckoff-site limits cannot be applied to it.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pymatgen.core.periodic_table import Element

from xrdgen.errors import UserError
from xrdgen.jsonio import read_json

ELEMENT_SYMBOL = re.compile(r"[A-Z][a-z]?")
ELEMENTS = frozenset(element.symbol for element in Element)
ENTRY_LAYOUTS = "[formula, id, space group, e_above_hull] or [e_above_hull, [symbol, space group]]"


@dataclass
class Metadata:
    """Per-space-group counts of a database's entries (module docstring) and where they came from."""

    source: str  # the file read
    entries: dict[int, int]  # space group -> number of entries
    n_elements: dict[int, Counter]  # space group -> Counter(k unique elements -> entries)
    elements: dict[int, Counter]  # space group -> Counter(element symbol -> entries containing it)
    provenance: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.entries.values())

    def n_elements_probs(self, spacegroup: int) -> list[float]:
        """P(number of unique elements = i + 1 | space group), i = 0..max-1 (as `build.py` stores it)."""
        counts = self.n_elements.get(int(spacegroup), Counter())
        if not counts:
            return []
        total = sum(counts.values())
        return [counts.get(k, 0) / total for k in range(1, max(counts) + 1)]

    def element_counts(self, spacegroup: int) -> Counter:
        """Entries of `spacegroup` containing each element (P(element | space group) ∝ these)."""
        return self.elements.get(int(spacegroup), Counter())


def _formula_and_spacegroup(key: str, entry) -> tuple[str, int]:
    """(formula, space group) of one entry in either layout; ValueError when it is neither."""
    if isinstance(entry, list) and len(entry) == 4 and isinstance(entry[0], str):
        formula, spacegroup = entry[0], entry[2]
    elif isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list) and len(entry[1]) == 2:
        formula, spacegroup = key, entry[1][1]
    else:
        raise ValueError(f"expected {ENTRY_LAYOUTS}")
    if isinstance(spacegroup, bool) or not isinstance(spacegroup, int) or not 1 <= spacegroup <= 230:
        raise ValueError(f"space group {spacegroup!r} is not a number 1..230")
    return formula, spacegroup


def _source_note(path: Path) -> str:
    """First line of SOURCE.md beside the file (where the data came from, its licence), or ""."""
    note = path.parent / "SOURCE.md"
    if not note.is_file():
        return ""
    lines = note.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return lines[0].lstrip("# ").strip() if lines else ""


def read_metadata(path: Path | str) -> Metadata:
    """Read a metadata file (module docstring); any problem is one `UserError` line naming the file."""
    path = Path(path)
    data = read_json(path, "metadata")
    if not isinstance(data, dict) or not data:
        raise UserError(f"{path}: not a metadata file (expected a JSON object: key -> list of entries)")
    entries: Counter = Counter()
    n_elements: dict[int, Counter] = defaultdict(Counter)
    elements: dict[int, Counter] = defaultdict(Counter)
    placeholders = 0
    for key, rows in data.items():
        if not isinstance(rows, list):
            raise UserError(f"{path}: malformed metadata under {key!r}: expected a list of entries")
        for row in rows:
            try:
                formula, spacegroup = _formula_and_spacegroup(key, row)
            except ValueError as exc:
                raise UserError(f"{path}: malformed metadata entry under {key!r}: {str(row)[:80]}: {exc}") from None
            entries[spacegroup] += 1
            symbols = set(ELEMENT_SYMBOL.findall(formula))
            if not symbols or not symbols <= ELEMENTS:
                placeholders += 1
                continue
            n_elements[spacegroup][len(symbols)] += 1
            elements[spacegroup].update(symbols)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    provenance = {
        "file": path.name,
        "path": str(path),
        "sha256": digest,
        "entries": int(sum(entries.values())),
        "spacegroups": len(entries),
        "entries_without_element_statistics": placeholders,
        "note": _source_note(path),
    }
    return Metadata(str(path), dict(sorted(entries.items())), dict(n_elements), dict(elements), provenance)
