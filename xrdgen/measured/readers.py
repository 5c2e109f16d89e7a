"""Read a measured powder pattern from any supported file: `read_pattern` picks the reader.

Own readers here (small and dependency-free):

- two-column text (.xy, .xye (GSAS: 2θ, I, σ), .txt, .csv, .dat; comma, tab, semicolon or spaces; comment lines starting
  with # ! ; % or //; column-name header lines before the first number; extra columns ignored);
- RRUFF powder files: the same text with `##KEY=VALUE` header lines (`##X-RAY WAVELENGTH=1.5418`);
- PANalytical .xrdml: XML; 2θ from the scan's `<positions axis="2Theta">` (startPosition/endPosition
  spread evenly over the counts, or an explicit listPositions), counts from `<counts>` (XRDML 2.x)
  or `<intensities>` (1.x), divided by per-point counting times and multiplied by beam attenuation
  factors where the file has them; the wavelength from `<usedWavelength><kAlpha1>`.

Instrument and exchange formats (pdCIF, GSAS .xye/.fxye, Rigaku .ras, Bruker .brml and .raw v3) are
in `xrdgen.measured.formats`, which says why no library reads them for us. Every reader ends in
`xrdgen.measured.pattern.checked_pattern`: unphysical points are dropped with a note, and every
malformed file raises one `UserError` line naming the file and the problem.
"""

from __future__ import annotations

import io
import math
import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Optional

import numpy as np

from xrdgen.errors import UserError
from xrdgen.measured.formats import BINARY_READERS, TEXT_READERS, sniff_text_format
from xrdgen.measured.pattern import MeasuredPattern, check_wavelength, checked_pattern, is_float

TEXT_SUFFIXES = (".xy", ".xye", ".txt", ".csv", ".dat", ".tsv", ".asc")  # .xye: GSAS 2θ, I, σ
XRDML_SUFFIXES = (".xrdml",)
PATTERN_SUFFIXES = TEXT_SUFFIXES + XRDML_SUFFIXES + tuple(TEXT_READERS) + tuple(BINARY_READERS)

_COMMENT_PREFIXES = ("#", "!", ";", "%", "//")
_SEPARATORS = re.compile(r"[,;\s]+")
# "wavelength = 1.5406", "##X-RAY WAVELENGTH=1.541838", "# lambda: 0.7093"
_WAVELENGTH_IN_HEADER = re.compile(r"(?:wavelength|lambda)[^=:\d]*[=:]\s*([0-9]*\.?[0-9]+)", re.IGNORECASE)


def read_pattern(path: Path | str) -> MeasuredPattern:
    """Read any supported file: by suffix for instrument formats and XRDML, else by content, else text."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    raw = path.read_bytes()
    if not raw.strip():
        raise UserError(f"{path}: empty file")
    suffix = path.suffix.lower()
    if suffix in BINARY_READERS:
        return BINARY_READERS[suffix](path, raw)
    if suffix in XRDML_SUFFIXES or raw.lstrip()[:200].find(b"xrdMeasurement") >= 0:
        return _read_xrdml(path, raw)
    text = decode(raw)
    reader = TEXT_READERS.get(suffix) or sniff_text_format(text)
    if reader is not None:
        return reader(path, text)
    return _read_text(path, text)


def decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _read_text(path: Path, text: str) -> MeasuredPattern:
    """Two-column text, RRUFF included: headers and comments first, then numbers, one pair a line.

    Fast path: the numeric block goes to numpy's C parser in one call; if that fails, the
    line-by-line parse finds the first bad line and names it.
    """
    lines = text.splitlines()
    header_lines: list[str] = []
    first = 0  # header: comments and column names before the first numeric line
    while first < len(lines):
        line = lines[first].strip()
        if line and not line.startswith(_COMMENT_PREFIXES) and is_float(_SEPARATORS.split(line, maxsplit=1)[0]):
            break
        if line:
            header_lines.append(line)
        first += 1
    rest = "\n".join(lines[first:])
    if _COMMENT_LINE.search(rest):  # comments among the data (e.g. RRUFF's closing ##END=)
        header_lines += [m.group(0).strip() for m in _COMMENT_LINE.finditer(rest)]
        rest = _COMMENT_LINE.sub("", rest)
    metadata: dict[str, str] = {}
    for line in header_lines:
        if line.startswith("##"):  # RRUFF: ##KEY=VALUE
            key, _, value = line[2:].partition("=")
            if key.strip() and key.strip().upper() != "END":
                metadata[key.strip()] = value.strip()
    data = _parse_block(rest)
    if data is None:  # something is wrong: the line-by-line parse finds and names it
        data = _parse_lines(path, lines, first)

    def where(i: int) -> str:  # the file line of the i-th data row, counted only when reporting
        numbers = [
            n
            for n, line in enumerate(lines, start=1)
            if n > first and line.strip() and not line.strip().startswith(_COMMENT_PREFIXES)
        ]
        return f"line {numbers[i]}"

    wavelength = _wavelength_from_header(path, header_lines)
    kind = "rruff" if metadata else "text"
    return checked_pattern(path, data[:, 0], data[:, 1], wavelength, {"format": kind, **metadata}, where)


_TO_SPACES = str.maketrans({",": " ", ";": " ", "\t": " "})
_COMMENT_LINE = re.compile(r"^[ \t]*(?:#|!|;|%|//).*$", re.MULTILINE)


def _parse_block(block: str) -> Optional[np.ndarray]:
    """Fast path: every line has the same number (>= 2) of finite numbers; else None.

    pandas' C parser reads a block 3× faster than `numpy.loadtxt` (4 against 11 ms for a RRUFF
    file of 8,500 lines, benchmarks/bench_predict.py); a short line gives NaN, a long one an error:
    both fall to the slow path, which names the line.
    """
    import pandas as pd  # lazy: only text files pay pandas' import

    if not block.strip():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = pd.read_csv(io.StringIO(block.translate(_TO_SPACES)), sep=r"\s+", header=None, dtype=np.float64)
        data = table.to_numpy(dtype=np.float64)
    except (ValueError, pd.errors.EmptyDataError):
        return None
    if data.shape[1] < 2 or data.shape[0] == 0:
        return None
    data = data[:, :2]
    return data if np.all(np.isfinite(data)) else None


def _parse_lines(path: Path, lines: list[str], first: int) -> np.ndarray:
    """Slow path: one line at a time, so that the first bad line is named (extra columns allowed)."""
    rows = []
    for number, line in enumerate(lines[first:], start=first + 1):
        line = line.strip()
        if not line or line.startswith(_COMMENT_PREFIXES):
            continue
        fields = [f for f in _SEPARATORS.split(line) if f]
        bad = next((f for f in fields[:2] if not is_float(f)), None)
        if bad is not None:
            raise UserError(f"{path}: line {number}: non-numeric value {bad!r}")
        if len(fields) < 2:
            raise UserError(f"{path}: line {number}: a single column; expected 2θ and intensity")
        values = (float(fields[0]), float(fields[1]))
        if not all(math.isfinite(v) for v in values):
            raise UserError(f"{path}: line {number}: NaN or infinite value")
        rows.append(values)
    if not rows:
        raise UserError(f"{path}: no data lines (expected two numeric columns: 2θ and intensity)")
    return np.asarray(rows, dtype=np.float64)


def _wavelength_from_header(path: Path, header_lines: list[str]) -> Optional[float]:
    for line in header_lines:
        match = _WAVELENGTH_IN_HEADER.search(line)
        if match:
            return check_wavelength(path, float(match.group(1)), "in the header")
    return None


def _strip_namespaces(root: ET.Element) -> ET.Element:
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root


def numbers_of(path: Path, element: ET.Element, what: str) -> np.ndarray:
    try:
        values = np.array([float(v) for v in (element.text or "").split()], dtype=np.float64)
    except ValueError:
        bad = next(v for v in (element.text or "").split() if not is_float(v))
        raise UserError(f"{path}: non-numeric value {bad!r} in <{what}>") from None
    if not np.all(np.isfinite(values)):
        raise UserError(f"{path}: NaN or infinite value in <{what}>")
    return values


def _read_xrdml(path: Path, raw: bytes) -> MeasuredPattern:
    """PANalytical XRDML: the first scan with a 2Theta axis (a file may hold several; see metadata)."""
    try:
        root = _strip_namespaces(ET.fromstring(raw))
    except ET.ParseError as exc:
        raise UserError(f"{path}: not valid XML ({exc})") from None
    scans = [s for s in root.iter("scan") if s.find("dataPoints") is not None]
    if not scans:
        raise UserError(f"{path}: no <scan> with <dataPoints> in this XRDML file")
    points = scans[0].find("dataPoints")
    axis = next((p for p in points.findall("positions") if p.get("axis", "").lower() == "2theta"), None)
    if axis is None:
        raise UserError(f'{path}: the scan has no <positions axis="2Theta">')
    counts_element = points.find("counts")
    if counts_element is None:
        counts_element = points.find("intensities")
    if counts_element is None:
        raise UserError(f"{path}: the scan has neither <counts> nor <intensities>")
    counts = numbers_of(path, counts_element, counts_element.tag)
    if len(counts) == 0:
        raise UserError(f"{path}: empty <{counts_element.tag}>")

    listed = axis.find("listPositions")
    if listed is not None:
        two_theta = numbers_of(path, listed, "listPositions")
        if len(two_theta) != len(counts):
            raise UserError(f"{path}: {len(two_theta)} listPositions but {len(counts)} counts")
    else:
        start, end = axis.find("startPosition"), axis.find("endPosition")
        if start is None or end is None:
            raise UserError(f"{path}: 2Theta positions have neither listPositions nor start/endPosition")
        (start_value,), (end_value,) = numbers_of(path, start, "startPosition"), numbers_of(path, end, "endPosition")
        two_theta = np.linspace(start_value, end_value, len(counts))

    intensity = counts.copy()
    times = points.find("countingTimes")
    if times is not None:  # counts per second when each point was counted for its own time
        t = numbers_of(path, times, "countingTimes")
        if len(t) == len(counts) and np.all(t > 0):
            intensity = intensity / t
    attenuation = points.find("beamAttenuationFactors")
    if attenuation is not None:
        factors = numbers_of(path, attenuation, "beamAttenuationFactors")
        if len(factors) == len(counts):
            intensity = intensity * factors
    wavelength = None
    alpha1 = root.find(".//usedWavelength/kAlpha1")
    if alpha1 is not None and (alpha1.text or "").strip():
        wavelength = float(numbers_of(path, alpha1, "kAlpha1")[0])
    metadata = {"format": "xrdml", "n_scans": len(scans), "namespace_stripped": True}
    return checked_pattern(path, two_theta, intensity, wavelength, metadata)


def find_pattern_file(folder: Path) -> Optional[Path]:
    """The pattern inside a dataset folder: `pattern.*` first, else the only supported file there."""
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PATTERN_SUFFIXES)
    named = [p for p in candidates if p.stem.lower() == "pattern"]
    if named:
        return named[0]
    return candidates[0] if len(candidates) == 1 else None
