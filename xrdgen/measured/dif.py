"""Labels for measured patterns from RRUFF DIF files, and a labelled directory of measured patterns.

A RRUFF DIF file (the database's "DIF File", in rruff_dev named `R040009_CIF.txt`) is text with
`CELL PARAMETERS:`, `SPACE GROUP: P2_1/n` (or `ALTERNATE SETTING FOR SPACE GROUP:`), the atoms, and a
peak list `2-THETA INTENSITY D-SPACING H K L`. The label is the International Tables number of the
space group. The symbol is Hermann–Mauguin, often in a non-standard setting (P2_1/n, B2/b, Pbnm,
Pcmn), with subscripts as `_` and sometimes in older notation (Fm3m for Fm-3m, Aba2 for Aea2).

Symbol → number: every one of the 530 settings spglib knows (Hall numbers 1–530,
`spglib.get_spacegroup_type`) contributes its short symbol, its full symbol (P 1 2_1/n 1) and the
short form of the full symbol (P2_1/n; Pbnm from P 2_1/b 2_1/n 2_1/m), compared without spaces and
underscores (a full symbol whose 2 vs 2_1 choice differs from spglib's is reduced to its short
form: I 2_1/b 2_1/c 2_1/a → Ibca). Also accepted: the ":H"/":1" setting suffixes, the pre-2002 glide letters where ITA now
writes e (Cmca, Aba2, Abm2, Cmma, Ccca), the cubic -3 written as 3, and centred triclinic cells (C-1).

Wavelength: the `X-RAY WAVELENGTH(S):` line (the first value, Kα1, where two are given). Most RRUFF
DIF files have none; then it follows from the peak list by Bragg's law, λ = 2 d sin θ, as the median
over the listed peaks (2θ to 0.01° and d to 1e-4 Å give λ to about 1e-4 Å). That is the wavelength
RRUFF computed the peaks with, the one its powder patterns were measured at (Cu Kα, 1.5418 Å).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np
import spglib

from xrdgen.errors import UserError
from xrdgen.measured.pattern import MeasuredPattern, check_wavelength
from xrdgen.measured.readers import PATTERN_SUFFIXES, read_pattern

_SPACE_GROUP_LINE = re.compile(r"^\s*(ALTERNATE SETTING FOR )?SPACE GROUP:\s*(\S+(?: \S+)*?)\s*$", re.MULTILINE)
_WAVELENGTH_LINE = re.compile(r"X-RAY WAVELENGTHS?:\s*([0-9.]+)")
_PEAK_HEADER = re.compile(r"2-THETA\s+INTENSITY\s+D-SPACING")
_RRUFF_ID = re.compile(r"R\d{6}(?:-\d+)?")
_DIF_NAME = re.compile(r"(_CIF\.txt|\.dif|DIF_File.*\.txt)$", re.IGNORECASE)
_OLD_GLIDE = {"e": "abc"}  # ITA 2002's double glide e was written a, b or c before


def _key(symbol: str) -> str:
    return re.sub(r"[\s_]", "", symbol)


def _short_forms(full: str, number: int) -> set[str]:
    """Short symbols of a full H-M symbol: monoclinic keeps the unique axis (P 1 2_1/n 1 → P2_1/n);
    orthorhombic and cubic keep the plane after each '/' (P 2_1/b 2_1/n 2_1/m → Pbnm, F 4/m -3 2/m → Fm-3m);
    the others keep the first axis whole (P 4_2/m 2_1/n 2/m → P4_2/mnm)."""
    lattice, *axes = full.split()
    forms = {lattice + "".join(axes)}
    non_one = [a for a in axes if a != "1"]
    if 3 <= number <= 15 and len(non_one) == 1:
        forms.add(lattice + non_one[0])
    elif 16 <= number <= 74 or number >= 195:
        forms.add(lattice + "".join(a.split("/")[-1] for a in axes))
    elif axes:
        forms.add(lattice + axes[0] + "".join(a.split("/")[-1] for a in axes[1:]))
    return forms


@lru_cache(maxsize=1)
def _symbol_table() -> dict[str, int]:
    table: dict[str, int] = {}
    for hall in range(1, 531):
        t = spglib.get_spacegroup_type(hall)
        names = {t.international_short, t.international_full, *(p.strip() for p in t.international.split("="))}
        names |= _short_forms(t.international_full, t.number)
        for name in names:
            table.setdefault(_key(name), t.number)
            if "e" in name[1:]:  # old glide letters for e (Cmce ← Cmca, Cmcb; Aea2 ← Aba2, Aca2)
                positions = [i for i, c in enumerate(name) if c == "e" and i > 0]
                for letters in itertools.product(_OLD_GLIDE["e"], repeat=len(positions)):
                    old = list(name)
                    for i, letter in zip(positions, letters):
                        old[i] = letter
                    table.setdefault(_key("".join(old)), t.number)
    for lattice in "ABCFI":  # centred triclinic cells
        table.setdefault(lattice + "1", 1)
        table.setdefault(lattice + "-1", 2)
    return table


def spacegroup_number(symbol: str) -> int:
    """The International Tables number of a Hermann–Mauguin symbol in any setting (module docstring).

    Raises ValueError for a symbol no setting has; callers add the file to the message.
    """
    text = re.sub(r":[A-Za-z0-9]+$", "", symbol.strip())  # R-3c:H, Fd-3m:2
    key = _key(text)
    key = key[0].upper() + key[1:] if key else key
    table = _symbol_table()
    if key in table:
        return table[key]
    if "3" in key and "-3" not in key and key.replace("3", "-3", 1) in table:  # Fm3m, Pa3, Ia3d
        return table[key.replace("3", "-3", 1)]
    if key.count("/") >= 2:  # a full symbol whose 2 vs 2_1 choice differs from spglib's: its short form
        short = re.sub(r"(?<![0-9])21?/", "", key)  # I2_1/b2_1/c2_1/a → Ibca, P4/m2_1/b2/m → P4/mbm
        if short in table:
            return table[short]
    raise ValueError(f"unknown space-group symbol {symbol!r}")


@dataclass(frozen=True)
class DifLabel:
    """What a RRUFF DIF file says about its sample."""

    path: Path
    symbol: str  # as written, e.g. "P2_1/n"
    spacegroup: int  # International Tables number
    wavelength: Optional[float]  # Å
    wavelength_source: str  # "X-RAY WAVELENGTH line", "peak list (λ = 2 d sin θ)" or "none"
    mineral: str
    alternate_setting: bool


def read_dif(path: Path | str) -> DifLabel:
    """The space group (number) and wavelength of a RRUFF DIF file; one-line UserError if malformed."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    text = path.read_bytes().decode("latin-1")
    match = _SPACE_GROUP_LINE.search(text)
    if match is None:
        raise UserError(f"{path}: no 'SPACE GROUP:' line (is this a RRUFF DIF file?)")
    symbol = match.group(2)
    try:
        number = spacegroup_number(symbol)
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None
    wavelength, said_by = None, "none"
    line = _WAVELENGTH_LINE.search(text)
    if line is not None:
        wavelength, said_by = (
            check_wavelength(path, float(line.group(1)), "on the X-RAY WAVELENGTH line"),
            "X-RAY WAVELENGTH line",
        )
    else:
        wavelength = _wavelength_from_peaks(path, text)
        if wavelength is not None:
            said_by = "peak list (λ = 2 d sin θ)"
    mineral = next((s.strip() for s in text.splitlines() if s.strip()), "")
    return DifLabel(path, symbol, number, wavelength, said_by, mineral, match.group(1) is not None)


def _wavelength_from_peaks(path: Path, text: str) -> Optional[float]:
    header = _PEAK_HEADER.search(text)
    if header is None:
        return None
    values = []
    for line in text[header.end() :].splitlines()[1:]:
        fields = line.split()
        if len(fields) < 3:
            break
        try:
            two_theta, d = float(fields[0]), float(fields[2])
        except ValueError:
            break
        if 0 < two_theta < 180 and d > 0:
            values.append(2.0 * d * np.sin(np.radians(two_theta) / 2.0))
    if not values:
        return None
    return check_wavelength(path, round(float(np.median(values)), 4), "from the peak list")


@dataclass(frozen=True)
class LabelledPattern:
    """One measured pattern file with its space-group label from a DIF file."""

    name: str
    pattern: Path
    label: DifLabel

    @property
    def spacegroup(self) -> int:
        return self.label.spacegroup

    @property
    def wavelength(self) -> Optional[float]:
        return self.label.wavelength


def _sample_key(path: Path) -> str:
    match = _RRUFF_ID.search(path.name)
    return match.group(0).split("-")[0] if match else _DIF_NAME.sub("", path.name).rsplit(".", 1)[0]


def is_dif_directory(directory: Path | str) -> bool:
    """True when the folder holds RRUFF DIF files (`*_CIF.txt`, `*.dif`, `*DIF_File*.txt`) beside patterns."""
    directory = Path(directory)
    return directory.is_dir() and any(_DIF_NAME.search(p.name) for p in directory.iterdir() if p.is_file())


def dif_samples(directory: Path | str) -> tuple[list[LabelledPattern], list[dict]]:
    """Every pattern file of a flat folder, labelled by the DIF file of the same RRUFF id (or stem).

    Returns the labelled patterns (sorted by name) and the skipped ones as {"name", "reason"} with a
    one-line reason (a pattern without a DIF file, a DIF file without a pattern, a malformed DIF file).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"{directory}: no such folder")
    files = sorted(p for p in directory.iterdir() if p.is_file())
    difs = {_sample_key(p): p for p in files if _DIF_NAME.search(p.name)}
    patterns = [p for p in files if not _DIF_NAME.search(p.name) and p.suffix.lower() in PATTERN_SUFFIXES]
    if not difs:
        raise UserError(f"{directory}: no RRUFF DIF files (*_CIF.txt, *.dif) to label the patterns")
    samples, skipped, used = [], [], set()
    for path in patterns:
        key = _sample_key(path)
        if key not in difs:
            skipped.append({"name": path.stem, "reason": f"{path}: no DIF file with the same RRUFF id ({key})"})
            continue
        used.add(key)
        try:
            samples.append(LabelledPattern(path.stem, path, read_dif(difs[key])))
        except UserError as exc:
            skipped.append({"name": path.stem, "reason": str(exc)})
    for key in sorted(set(difs) - used):
        skipped.append({"name": key, "reason": f"{difs[key]}: a DIF file without a pattern file"})
    return samples, skipped


def read_labelled(sample: LabelledPattern) -> MeasuredPattern:
    """The sample's pattern; where the pattern file states no wavelength, the DIF file's (with a note)."""
    pattern = read_pattern(sample.pattern)
    if pattern.wavelength is None and sample.wavelength is not None:
        pattern.wavelength = sample.wavelength
        pattern.notes.append(
            f"wavelength {sample.wavelength:g} Å from {sample.label.path.name} ({sample.label.wavelength_source})"
        )
    return pattern
