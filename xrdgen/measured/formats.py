"""Instrument and exchange formats of powder patterns: pdCIF, GSAS raw (.fxye/.gsa), Rigaku .ras,
Bruker .brml and Bruker .raw (version 3, "RAW1.01").

Why own parsers (checked on PyPI): `xylib-py` reads Bruker RAW v1–v3 but ships only as C++ source
needing SWIG and Boost to build, and has no .brml, .ras or pdCIF; `xrayutilities` (kept up to date)
reads .ras and pdCIF but is a large reciprocal-space toolkit with a compiled extension; `fabio` is for
2D detector images; `pybruker` is unmaintained since 2019. Each format below is a few dozen lines
(pdCIF's CIF syntax excepted: a real CIF parser reads it).

- pdCIF (IUCr powder CIF): the CIF syntax is gemmi's (`xrdgen.measured.cif` says why); what the
  powder items mean is ours. A Rietveld pdCIF holds several data blocks (publication, phases, one
  per diffractogram): the block read is the first, in file order, with a loop holding an intensity
  column, preferring measured over processed data (`_pd_meas_counts_total`,
  `_pd_meas_intensity_total`, `_pd_proc_intensity_total`, `_pd_proc_intensity_net`); a note names it
  when several blocks have one. 2θ from the same loop's `_pd_meas_2theta_scan`,
  `_pd_proc_2theta_corrected` or `_pd_meas_angle_2theta`, or the block's range form
  `_pd_meas_2theta_range_min/max/inc` (also `_pd_proc_`); the wavelength from the block's
  `_diffrn_radiation_wavelength` (the first, i.e. Kα1, where a loop lists several) or
  `_pd_proc_wavelength`, else from the first other block that states one (with a note). Numbers may
  carry standard uncertainties, "1234(12)", which are dropped; points whose value is unknown ('?',
  '.') are dropped with a note.
- GSAS raw: a title line, then `BANK n nchan nrec BINTYP bcoef1 bcoef2 ... TYPE`. TYPE FXYE: lines of
  2θ (centidegrees), I, σ. TYPE ESD (five F8 pairs I, σ per line) and STD (ten I2,F6 fields per line):
  2θ = bcoef1 + i·bcoef2, in centidegrees. Only constant-wavelength banks (BINTYP CONST/CONS); the
  time-of-flight ones (SLOG, TIME_MAP, RALF) are refused, their x being a flight time, not 2θ.
- Rigaku .ras: blocks `*RAS_HEADER_START … *RAS_INT_START`, data lines "2θ counts factor" until
  `*RAS_INT_END`; intensity = counts × factor (the attenuator correction); the wavelength from
  `*HW_XG_WAVE_LENGTH_ALPHA1`. The first block is read; the note says when there are more.
- Bruker .brml: a zip of XML; `Experiment0/RawData0.xml` (or the first RawData*.xml) holds `<Datum>`
  lines "time, flag, axis values…, counts" with the axes in `<ScanAxisInfo>` order; the 2θ column is
  the TwoTheta axis, counts the last column; the wavelength from `<WaveLengthAlpha1 Value=…>`.
- Bruker .raw version 3 (file starts "RAW1.01"): a 712-byte file header (α1 wavelength, float64 at
  byte 624), then per range a 304-byte header (steps uint32 at 4, start 2θ float64 at 16, step
  float64 at 176, supplementary header size uint32 at 256) and `steps` float32 counts (layout as in
  Bruker's DIFFRAC file description, also used by xylib). Versions 1, 2 and 4 are refused with a
  one-line error that says to export .brml or .xy. A .raw file that is text with a BANK line is GSAS.
"""

from __future__ import annotations

import io
import re
import struct
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import numpy as np
from gemmi import cif

from xrdgen.errors import UserError
from xrdgen.measured.cif import cif_number, item_value, read_cif
from xrdgen.measured.pattern import MeasuredPattern, checked_pattern, is_float

# ------------------------------------------------------------------------------------------ pdCIF

_PD_INTENSITY = ("_pd_meas_counts_total", "_pd_meas_intensity_total", "_pd_proc_intensity_total", "_pd_proc_intensity_net")
_PD_TWO_THETA = ("_pd_meas_2theta_scan", "_pd_proc_2theta_corrected", "_pd_meas_angle_2theta")
_PD_RANGE = ("_pd_meas_2theta_range_", "_pd_proc_2theta_range_")
_PD_WAVELENGTH = ("_diffrn_radiation_wavelength", "_pd_proc_wavelength")


def _intensity_tag(block: cif.Block) -> Optional[str]:
    """The block's preferred intensity column (measured before processed) that stands in a loop."""
    return next((t for t in _PD_INTENSITY if block.find_values(t).get_loop() is not None), None)


def _wavelength(path: Path, block: cif.Block) -> Optional[float]:
    for tag in _PD_WAVELENGTH:
        text = item_value(block, tag)
        if text is not None:
            return cif_number(path, text, tag)
    return None


def read_pdcif(path: Path, text: str) -> MeasuredPattern:
    """pdCIF powder data (module docstring): the first data block with a powder intensity loop."""
    document, notes = read_cif(path, text)
    powder = [b for b in document if _intensity_tag(b) is not None]
    if not powder:
        raise UserError(f"{path}: no powder intensity loop ({', '.join(_PD_INTENSITY)}) in this CIF")
    block, tag = powder[0], _intensity_tag(powder[0])
    if len(powder) > 1:
        notes.append(f"read data block {block.name!r}, the first of {len(powder)} with powder data")
    loop = block.find_values(tag).get_loop()
    columns = {t.lower(): i for i, t in enumerate(loop.tags)}
    angle_tag = next((t for t in _PD_TWO_THETA if t.lower() in columns), None)
    values, width = loop.values, loop.width()
    rows = [[values[r * width + columns[t.lower()]] for t in (angle_tag, tag) if t] for r in range(loop.length())]
    unknown = [r for r, row in enumerate(rows) if any(cif.is_null(v) for v in row)]
    if unknown:
        notes.append(
            f"dropped {len(unknown)} point(s) whose value is unknown ('?' or '.'), the first data point {unknown[0] + 1}"
        )
        rows = [row for row in rows if not any(cif.is_null(v) for v in row)]
    intensity = np.array([cif_number(path, row[-1], tag) for row in rows])
    if angle_tag is not None:
        two_theta = np.array([cif_number(path, row[0], angle_tag) for row in rows])
    else:
        prefix = next((p for p in _PD_RANGE if item_value(block, p + "min") and item_value(block, p + "inc")), None)
        if prefix is None:
            raise UserError(f"{path}: {tag} has no 2θ column ({', '.join(_PD_TWO_THETA)}) and no _pd_meas_2theta_range_min/inc")
        lo, inc = (cif_number(path, item_value(block, prefix + k), prefix + k) for k in ("min", "inc"))
        if inc == 0:
            raise UserError(f"{path}: {prefix}inc is 0")
        two_theta = np.delete(lo + inc * np.arange(loop.length()), unknown)
        high = item_value(block, prefix + "max")
        if high is not None:
            hi = cif_number(path, high, prefix + "max")
            points = round((hi - lo) / inc) + 1
            if points != loop.length():
                raise UserError(
                    f"{path}: {loop.length()} intensities but the 2θ range {lo:g}–{hi:g}° by {inc:g}° has {points} points"
                )
    wavelength = _wavelength(path, block)
    if wavelength is None:
        other = next(((b, w) for b in document if b is not block and (w := _wavelength(path, b)) is not None), None)
        if other is not None:
            wavelength = other[1]
            notes.append(f"wavelength {wavelength:g} Å from data block {other[0].name!r}")
    pattern = checked_pattern(path, two_theta, intensity, wavelength, {"format": "pdcif", "intensity": tag, "block": block.name})
    pattern.notes[:0] = notes
    return pattern


# ------------------------------------------------------------------------------------------- GSAS


def read_gsas(path: Path, text: str) -> MeasuredPattern:
    """GSAS raw constant-wavelength data (module docstring): FXYE, ESD or STD after the BANK line."""
    lines = text.splitlines()
    bank = next((n for n, line in enumerate(lines) if line.startswith("BANK")), None)
    if bank is None:
        raise UserError(f"{path}: no BANK line (a GSAS raw file has one before the data)")
    fields = lines[bank].split()
    kind = fields[-1].upper() if len(fields) > 5 else "STD"
    binning = fields[4].upper() if len(fields) > 4 else ""
    end = next((n for n, line in enumerate(lines[bank + 1 :]) if line.startswith("BANK")), None)
    block = lines[bank + 1 :] if end is None else lines[bank + 1 : bank + 1 + end]
    data = [line for line in block if line.strip()]
    note = [] if end is None else ["read the first BANK of several"]
    if not binning.startswith("CONS"):  # SLOG, TIME_MAP, RALF: time of flight, x in µs rather than 2θ
        raise UserError(f"{path}: BANK line: binning {binning or '?'} not supported (only CONST/CONS constant-wavelength 2θ)")
    try:
        if kind == "FXYE":
            rows = np.array([[float(v) for v in line.split()[:2]] for line in data], dtype=np.float64)
            if rows.size == 0:
                raise UserError(f"{path}: no data after the BANK line")
            two_theta, intensity = rows[:, 0] / 100.0, rows[:, 1]
        elif kind in ("ESD", "STD"):
            start, step, nchan = float(fields[5]) / 100.0, float(fields[6]) / 100.0, int(fields[2])
            width = 16 if kind == "ESD" else 8
            cells = [line[k : k + width] for line in data for k in range(0, len(line.rstrip()), width)]
            values = [float(c[:8]) if kind == "ESD" else float(c[2:8]) for c in cells if c.strip()]
            intensity = np.array(values[:nchan], dtype=np.float64)
            two_theta = start + step * np.arange(len(intensity))
        else:
            raise UserError(f"{path}: BANK line: data type {kind} not supported (FXYE, ESD or STD)")
    except (ValueError, IndexError) as exc:
        raise UserError(f"{path}: malformed GSAS data ({exc})") from None
    pattern = checked_pattern(path, two_theta, intensity, None, {"format": f"gsas-{kind.lower()}", "title": lines[0].strip()})
    pattern.notes += note
    return pattern


# ------------------------------------------------------------------------------------------ Rigaku


def read_ras(path: Path, text: str) -> MeasuredPattern:
    """Rigaku .ras (module docstring): the first `*RAS_INT_START` block."""
    lines = text.splitlines()
    starts = [n for n, line in enumerate(lines) if line.startswith("*RAS_INT_START")]
    if not starts:
        raise UserError(f"{path}: no *RAS_INT_START block in this RAS file")
    rows = []
    for n in range(starts[0] + 1, len(lines)):
        line = lines[n].strip()
        if line.startswith("*RAS_INT_END"):
            break
        if not line:
            continue
        fields = line.split()
        try:
            values = [float(v) for v in fields[:3]]
        except ValueError:
            raise UserError(f"{path}: line {n + 1}: non-numeric value in {line[:40]!r}") from None
        if len(values) < 2:
            raise UserError(f"{path}: line {n + 1}: a single column; expected 2θ and counts")
        rows.append((n, values[0], values[1] * (values[2] if len(values) > 2 else 1.0)))
    else:
        raise UserError(f"{path}: the data block has no *RAS_INT_END (truncated file?)")
    if not rows:
        raise UserError(f"{path}: empty *RAS_INT_START block")
    header = {}
    for line in lines[: starts[0]]:
        if line.startswith("*") and " " in line:
            key, value = line[1:].split(" ", 1)
            header.setdefault(key, value.strip().strip('"'))
    wavelength = None
    if header.get("HW_XG_WAVE_LENGTH_ALPHA1"):
        try:
            wavelength = float(header["HW_XG_WAVE_LENGTH_ALPHA1"])
        except ValueError:
            raise UserError(f"{path}: *HW_XG_WAVE_LENGTH_ALPHA1 {header['HW_XG_WAVE_LENGTH_ALPHA1']!r} is not a number") from None
    line_of = [r[0] for r in rows]
    pattern = checked_pattern(
        path,
        np.array([r[1] for r in rows]),
        np.array([r[2] for r in rows]),
        wavelength,
        {"format": "ras", "scan_axis": header.get("MEAS_SCAN_AXIS_X", "")},
        lambda i: f"line {line_of[i] + 1}",
    )
    if len(starts) > 1:
        pattern.notes.append(f"read the first of {len(starts)} scans")
    return pattern


# ------------------------------------------------------------------------------------------ Bruker


def read_brml(path: Path, raw: bytes) -> MeasuredPattern:
    """Bruker .brml (module docstring): the first RawData*.xml of the zip."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise UserError(f"{path}: not a zip archive (a .brml file is one)") from None
    names = sorted(n for n in archive.namelist() if re.search(r"RawData\d*\.xml$", n))
    if not names:
        raise UserError(f"{path}: no RawData*.xml inside this .brml archive")
    try:
        root = ET.fromstring(archive.read(names[0]))
    except ET.ParseError as exc:
        raise UserError(f"{path}: {names[0]} is not valid XML ({exc})") from None
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    datums = [d.text.strip() for d in root.iter("Datum") if d.text and d.text.strip()]
    if not datums:
        raise UserError(f"{path}: {names[0]} has no <Datum> lines")
    axes = [a.get("AxisId", a.get("AxisName", "")) for a in root.iter("ScanAxisInfo")]
    try:
        table = np.array([[float(v) for v in d.split(",")] for d in datums], dtype=np.float64)
    except ValueError:
        bad = next(d for d in datums if not all(is_float(v) for v in d.split(",")))
        raise UserError(f"{path}: non-numeric <Datum> {bad[:60]!r}") from None
    if table.ndim != 2 or table.shape[1] < 3:
        raise UserError(f"{path}: <Datum> lines of unequal or too few columns (need time, …, 2θ, counts)")
    column = 2
    if "TwoTheta" in axes and table.shape[1] == 3 + len(axes):
        column = 2 + axes.index("TwoTheta")
    wavelength = None
    alpha1 = next(root.iter("WaveLengthAlpha1"), None)
    if alpha1 is not None and alpha1.get("Value"):
        wavelength = float(alpha1.get("Value"))
    pattern = checked_pattern(
        path, table[:, column], table[:, -1], wavelength, {"format": "brml", "entry": names[0]}, lambda i: f"<Datum> {i + 1}"
    )
    if len(names) > 1:
        pattern.notes.append(f"read {names[0]}, the first of {len(names)} scans")
    return pattern


def read_bruker_raw(path: Path, raw: bytes) -> MeasuredPattern:
    """Bruker .raw version 3 (module docstring); a text .raw with a BANK line is GSAS."""
    if not raw.startswith(b"RAW"):
        text = raw.decode("latin-1")
        if re.search(r"^BANK", text, re.MULTILINE):
            return read_gsas(path, text)
        raise UserError(f"{path}: neither a Bruker RAW file (starts 'RAW') nor GSAS text (a BANK line)")
    if not raw.startswith(b"RAW1.01"):
        version = {b"RAW ": "1", b"RAW2": "2", b"RAW4": "4"}.get(raw[:4], repr(raw[:7].decode("latin-1")))
        raise UserError(f"{path}: Bruker RAW version {version} is not supported (version 3 is); export the scan as .brml or .xy")
    try:
        (ranges,) = struct.unpack_from("<I", raw, 12)
        (wavelength,) = struct.unpack_from("<d", raw, 624)
        offset, two_theta, counts = 712, [], []
        for _ in range(max(ranges, 0)):
            header_len, steps = struct.unpack_from("<II", raw, offset)
            (start,) = struct.unpack_from("<d", raw, offset + 16)
            (step,) = struct.unpack_from("<d", raw, offset + 176)
            (extra,) = struct.unpack_from("<I", raw, offset + 256)
            data_at = offset + header_len + extra
            values = np.frombuffer(raw, dtype="<f4", count=steps, offset=data_at)
            two_theta.append(start + step * np.arange(steps))
            counts.append(values.astype(np.float64))
            offset = data_at + 4 * steps
    except (struct.error, ValueError):
        raise UserError(f"{path}: Bruker RAW file is truncated (ends inside a header or a range)") from None
    if not counts:
        raise UserError(f"{path}: Bruker RAW file has no ranges")
    pattern = checked_pattern(
        path, two_theta[0], counts[0], wavelength if wavelength > 0 else None, {"format": "bruker-raw-v3", "ranges": ranges}
    )
    if ranges > 1:
        pattern.notes.append(f"read the first of {ranges} ranges")
    return pattern


TEXT_READERS: dict[str, Callable[[Path, str], MeasuredPattern]] = {
    ".cif": read_pdcif,
    ".pdcif": read_pdcif,
    ".fxye": read_gsas,
    ".gsa": read_gsas,
    ".gsas": read_gsas,
    ".ras": read_ras,
}
BINARY_READERS: dict[str, Callable[[Path, bytes], MeasuredPattern]] = {".brml": read_brml, ".raw": read_bruker_raw}


def sniff_text_format(text: str) -> Optional[Callable[[Path, str], MeasuredPattern]]:
    """A reader by content, for files whose suffix says nothing (.txt, .dat): pdCIF, RAS, GSAS."""
    head = text[:20000]
    if "*RAS_INT_START" in head or "*RAS_DATA_START" in head:
        return read_ras
    if "loop_" in head and "_pd_" in head:
        return read_pdcif
    if re.search(r"^BANK\s+\d", head, re.MULTILINE):
        return read_gsas
    return None
