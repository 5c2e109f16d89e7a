"""Measured powder patterns: read them, and bring them onto the grid a trained model expects.

Three readers, all small and dependency-free (checked on PyPI: `xrayutilities` reads XRDML but is a
large reciprocal-space toolkit with a compiled extension, `xylib-py` is unmaintained since 2020,
`fabio` is for 2D detector images; none is worth a dependency for a two-column file or one XML scan):

- two-column text (.xy, .txt, .csv, .dat; comma, tab, semicolon or spaces; comment lines starting
  with # ! ; % or //; column-name header lines before the first number; extra columns ignored);
- RRUFF powder files: the same text with `##KEY=VALUE` header lines (`##X-RAY WAVELENGTH=1.5418`);
- PANalytical .xrdml: XML; 2θ from the scan's `<positions axis="2Theta">` (startPosition/endPosition
  spread evenly over the counts, or an explicit listPositions), counts from `<counts>` (XRDML 2.x)
  or `<intensities>` (1.x), divided by per-point counting times and multiplied by beam attenuation
  factors where the file has them; the wavelength from `<usedWavelength><kAlpha1>`.

Every malformed file raises one `UserError` line naming the file and the problem (empty, a single
column, non-numeric, NaN/inf, decreasing or duplicated 2θ).

Preprocessing (`preprocess`) follows the steps the training patterns went through, in order:

1. 2θ is converted to the model's wavelength through the d-spacing (Bragg, λ = 2 d sin θ):
   sin θ' = sin θ · λ_model / λ_measured; points whose θ' would not exist (sin θ' > 1) are dropped.
2. The pattern is resampled by linear interpolation onto the model's grid (GridConfig), but only
   inside the measured 2θ range.
3. Grid points the measurement does not cover are filled, and the covered fraction is reported.
   Choice (``fill="edge"``, default): each uncovered side takes the median intensity of the
   nearest 0.5° of measured data, so the filled part continues the background without a step that
   a convolutional network could mistake for a peak flank. ``fill="zero"`` fills with the measured
   minimum instead (0 after step 4), matching patterns simulated with nothing outside the range.
4. The minimum is subtracted and the pattern scaled to a maximum of 1 (as every training pattern).
5. If the model was trained on sqrt-scaled inputs (meta.json `sqrt_scale`), the square root is taken
   (steps 4-5 through `xrdgen.augmentation.scale_input`, the scaling the training patterns got).
"""

from __future__ import annotations

import math
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from xrdgen.config import GridConfig
from xrdgen.errors import UserError

TEXT_SUFFIXES = (".xy", ".txt", ".csv", ".dat", ".tsv", ".asc")
XRDML_SUFFIXES = (".xrdml",)
PATTERN_SUFFIXES = TEXT_SUFFIXES + XRDML_SUFFIXES

_COMMENT_PREFIXES = ("#", "!", ";", "%", "//")
_SEPARATORS = re.compile(r"[,;\s]+")
# "wavelength = 1.5406", "##X-RAY WAVELENGTH=1.541838", "# lambda: 0.7093"
_WAVELENGTH_IN_HEADER = re.compile(r"(?:wavelength|lambda)[^=:\d]*[=:]\s*([0-9]*\.?[0-9]+)", re.IGNORECASE)
_EDGE_WINDOW_DEG = 0.5


@dataclass
class MeasuredPattern:
    """A pattern as measured: 2θ in degrees (strictly increasing), intensity in the file's units."""

    two_theta: np.ndarray
    intensity: np.ndarray
    wavelength: Optional[float]  # Å, from the file; None when the file does not say
    source: str
    metadata: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.two_theta)


@dataclass
class ModelInput:
    """A measured pattern on the model's grid, and what it took to get it there."""

    x: np.ndarray  # float32 (n_points,), the model's input
    two_theta: np.ndarray  # the model's grid (float64)
    covered_fraction: float  # share of grid points inside the measured range
    covered_range: tuple[float, float]  # measured 2θ range at the model's wavelength
    wavelength: float  # Å, the measurement's wavelength used for the conversion
    wavelength_source: str  # "file", "command line" or "assumed (model's)"
    points_dropped: int  # measured points beyond 2θ = 180° after the conversion


# ---------------------------------------------------------------------------------------- readers


def read_pattern(path: Path | str) -> MeasuredPattern:
    """Read any supported file: XRDML by suffix or by content, otherwise text (RRUFF or two-column)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    raw = path.read_bytes()
    if not raw.strip():
        raise UserError(f"{path}: empty file")
    if path.suffix.lower() in XRDML_SUFFIXES or raw.lstrip()[:200].find(b"xrdMeasurement") >= 0:
        return _read_xrdml(path, raw)
    return _read_text(path, _decode(raw))


def _decode(raw: bytes) -> str:
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
        if line and not line.startswith(_COMMENT_PREFIXES) and _is_float(_SEPARATORS.split(line, maxsplit=1)[0]):
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
        numbers = [n for n, line in enumerate(lines, start=1) if n > first and line.strip() and not line.strip().startswith(_COMMENT_PREFIXES)]
        return f"line {numbers[i]}"

    _check_two_theta(path, data[:, 0], where)
    wavelength = _wavelength_from_header(path, header_lines)
    kind = "rruff" if metadata else "text"
    return MeasuredPattern(data[:, 0].copy(), data[:, 1].copy(), wavelength, str(path), {"format": kind, **metadata})


_TO_SPACES = str.maketrans({",": " ", ";": " ", "\t": " "})
_COMMENT_LINE = re.compile(r"^[ \t]*(?:#|!|;|%|//).*$", re.MULTILINE)


def _parse_block(block: str) -> Optional[np.ndarray]:
    """Fast path: every line has the same number (>= 2) of finite numbers; else None."""
    import io

    if not block.strip():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = np.loadtxt(io.StringIO(block.translate(_TO_SPACES)), dtype=np.float64, ndmin=2)
    except ValueError:
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
        bad = next((f for f in fields[:2] if not _is_float(f)), None)
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


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _wavelength_from_header(path: Path, header_lines: list[str]) -> Optional[float]:
    for line in header_lines:
        match = _WAVELENGTH_IN_HEADER.search(line)
        if match:
            value = float(match.group(1))
            if not 0.05 < value < 5.0:
                raise UserError(f"{path}: wavelength {value} Å in the header is outside 0.05–5 Å")
            return value
    return None


def _check_two_theta(path: Path, two_theta: np.ndarray, where) -> None:
    """2θ must be strictly increasing inside (0°, 180°); `where(i)` names the i-th point."""
    if len(two_theta) < 2:
        raise UserError(f"{path}: only {len(two_theta)} data point; a pattern needs at least 2")
    step = np.diff(two_theta)
    if np.any(step == 0):
        i = int(np.argmax(step == 0)) + 1
        raise UserError(f"{path}: {where(i)}: duplicated 2θ value {two_theta[i]:g}")
    if np.any(step < 0):
        i = int(np.argmax(step < 0)) + 1
        raise UserError(f"{path}: {where(i)}: 2θ decreases ({two_theta[i - 1]:g} then {two_theta[i]:g})")
    if two_theta[0] <= 0 or two_theta[-1] >= 180:
        raise UserError(f"{path}: 2θ range {two_theta[0]:g}–{two_theta[-1]:g}° is outside (0°, 180°)")


def _strip_namespaces(root: ET.Element) -> ET.Element:
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root


def _numbers(path: Path, element: ET.Element, what: str) -> np.ndarray:
    try:
        values = np.array([float(v) for v in (element.text or "").split()], dtype=np.float64)
    except ValueError:
        bad = next(v for v in (element.text or "").split() if not _is_float(v))
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
        raise UserError(f"{path}: the scan has no <positions axis=\"2Theta\">")
    counts_element = points.find("counts")
    if counts_element is None:
        counts_element = points.find("intensities")
    if counts_element is None:
        raise UserError(f"{path}: the scan has neither <counts> nor <intensities>")
    counts = _numbers(path, counts_element, counts_element.tag)
    if len(counts) == 0:
        raise UserError(f"{path}: empty <{counts_element.tag}>")

    listed = axis.find("listPositions")
    if listed is not None:
        two_theta = _numbers(path, listed, "listPositions")
        if len(two_theta) != len(counts):
            raise UserError(f"{path}: {len(two_theta)} listPositions but {len(counts)} counts")
    else:
        start, end = axis.find("startPosition"), axis.find("endPosition")
        if start is None or end is None:
            raise UserError(f"{path}: 2Theta positions have neither listPositions nor start/endPosition")
        (start_value,), (end_value,) = _numbers(path, start, "startPosition"), _numbers(path, end, "endPosition")
        two_theta = np.linspace(start_value, end_value, len(counts))

    intensity = counts.copy()
    times = points.find("countingTimes")
    if times is not None:  # counts per second when each point was counted for its own time
        t = _numbers(path, times, "countingTimes")
        if len(t) == len(counts) and np.all(t > 0):
            intensity = intensity / t
    attenuation = points.find("beamAttenuationFactors")
    if attenuation is not None:
        factors = _numbers(path, attenuation, "beamAttenuationFactors")
        if len(factors) == len(counts):
            intensity = intensity * factors
    _check_two_theta(path, two_theta, lambda i: f"2θ point {i + 1}")

    wavelength = None
    alpha1 = root.find(".//usedWavelength/kAlpha1")
    if alpha1 is not None and (alpha1.text or "").strip():
        wavelength = float(_numbers(path, alpha1, "kAlpha1")[0])
    metadata = {"format": "xrdml", "n_scans": len(scans), "namespace_stripped": True}
    return MeasuredPattern(two_theta, intensity, wavelength, str(path), metadata)


# ---------------------------------------------------------------------------------- preprocessing


def convert_wavelength(two_theta: np.ndarray, from_wavelength: float, to_wavelength: float) -> np.ndarray:
    """2θ of the same d-spacings at another wavelength (Bragg: λ = 2 d sin θ); NaN where unreachable."""
    sin_theta = np.sin(np.radians(two_theta) / 2.0) * (to_wavelength / from_wavelength)
    out = np.full_like(two_theta, np.nan, dtype=np.float64)
    ok = sin_theta < 1.0
    out[ok] = 2.0 * np.degrees(np.arcsin(sin_theta[ok]))
    return out


def preprocess(
    pattern: MeasuredPattern,
    grid: GridConfig,
    model_wavelength: float,
    sqrt_scale: bool = False,
    wavelength: Optional[float] = None,
    fill: Literal["edge", "zero"] = "edge",
) -> ModelInput:
    """The model's input for a measured pattern (steps 1-5 of the module docstring).

    `wavelength` (the command line's) overrides the file's; with neither, the model's is assumed.
    """
    if wavelength is not None:
        source_wavelength, said_by = float(wavelength), "command line"
    elif pattern.wavelength is not None:
        source_wavelength, said_by = float(pattern.wavelength), "file"
    else:
        source_wavelength, said_by = float(model_wavelength), "assumed (model's)"

    two_theta = pattern.two_theta
    intensity = pattern.intensity
    if not math.isclose(source_wavelength, model_wavelength, rel_tol=1e-9):
        two_theta = convert_wavelength(two_theta, source_wavelength, model_wavelength)
    reachable = np.isfinite(two_theta)
    dropped = int(np.count_nonzero(~reachable))
    two_theta, intensity = two_theta[reachable], intensity[reachable]
    if len(two_theta) < 2:
        raise UserError(f"{pattern.source}: no measured point is reachable at the model's wavelength {model_wavelength} Å")

    grid_two_theta = grid.two_theta()
    lo, hi = float(two_theta[0]), float(two_theta[-1])
    covered = (grid_two_theta >= lo) & (grid_two_theta <= hi)
    if not covered.any():
        raise UserError(
            f"{pattern.source}: the measured range {lo:.2f}–{hi:.2f}° (at {model_wavelength} Å) "
            f"does not overlap the model's grid {grid.two_theta_min:g}–{grid.two_theta_max:g}°"
        )
    y = np.empty_like(grid_two_theta)
    y[covered] = np.interp(grid_two_theta[covered], two_theta, intensity)
    below, above = grid_two_theta < lo, grid_two_theta > hi
    if fill == "edge":
        y[below] = np.median(intensity[two_theta <= lo + _EDGE_WINDOW_DEG])
        y[above] = np.median(intensity[two_theta >= hi - _EDGE_WINDOW_DEG])
    elif fill == "zero":
        y[below | above] = y[covered].min()
    else:
        raise UserError(f"fill must be 'edge' or 'zero', not {fill!r}")

    y = y - y.min()
    if not y.max() > 0:
        raise UserError(f"{pattern.source}: the pattern is flat on the model's grid (no peaks to classify)")
    from xrdgen.augmentation import scale_input  # the one place of the training input scaling

    y = scale_input(y, sqrt_scale)
    return ModelInput(
        x=y.astype(np.float32),
        two_theta=grid_two_theta,
        covered_fraction=float(covered.mean()),
        covered_range=(lo, hi),
        wavelength=source_wavelength,
        wavelength_source=said_by,
        points_dropped=dropped,
    )


def find_pattern_file(folder: Path) -> Optional[Path]:
    """The pattern inside a dataset folder: `pattern.*` first, else the only supported file there."""
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PATTERN_SUFFIXES)
    named = [p for p in candidates if p.stem.lower() == "pattern"]
    if named:
        return named[0]
    return candidates[0] if len(candidates) == 1 else None
