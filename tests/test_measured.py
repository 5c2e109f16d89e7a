"""Readers and preprocessing of measured patterns, on the real lab17 measurements.

XRDML and RRUFF files are written here from the real lab17 data (in the layout those formats use)
and read back; wavelength conversion is checked against pymatgen's own simulation at two
wavelengths on many Materials Project structures.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest

from xrdgen.config import GridConfig
from xrdgen.errors import UserError
from xrdgen.measured.pattern import MeasuredPattern
from xrdgen.measured.preprocess import convert_wavelength, preprocess
from xrdgen.measured.readers import read_pattern

CU_KA1, MO_KA1 = 1.54056, 0.70930


def lab17_folders(lab17_dir: Path) -> list[Path]:
    return sorted(p for p in lab17_dir.iterdir() if p.is_dir())


def loadtxt_reference(path: Path) -> np.ndarray:
    """An independent read of a lab17 CSV (numpy's own parser)."""
    return np.loadtxt(path, delimiter=",", ndmin=2)


def write_xrdml(
    path: Path, two_theta, counts, wavelength, listed: bool, version: str = "2.1", counting_times=None, attenuation=None
) -> None:
    """An XRDML file as PANalytical writes it (namespace, usedWavelength, one scan)."""
    counts_tag = "counts" if version.startswith("2") else "intensities"
    positions = (
        f"<listPositions>{' '.join(f'{v:.6f}' for v in two_theta)}</listPositions>"
        if listed
        else f"<startPosition>{two_theta[0]:.6f}</startPosition><endPosition>{two_theta[-1]:.6f}</endPosition>"
    )
    extra = ""
    if counting_times is not None:
        extra += f'<countingTimes unit="seconds">{" ".join(f"{t:g}" for t in counting_times)}</countingTimes>'
    else:
        extra += '<commonCountingTime unit="seconds">0.5</commonCountingTime>'
    if attenuation is not None:
        extra += f"<beamAttenuationFactors>{' '.join(f'{a:g}' for a in attenuation)}</beamAttenuationFactors>"
    path.write_text(
        f"""<?xml version="1.0" encoding="UTF-8"?>
<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/{version}" status="Completed">
  <sample type="To be analyzed"><id>lab17</id></sample>
  <xrdMeasurement measurementType="Scan" status="Completed">
    <usedWavelength intended="K-Alpha 1">
      <kAlpha1 unit="Angstrom">{wavelength:.5f}</kAlpha1>
      <kAlpha2 unit="Angstrom">1.54443</kAlpha2>
      <ratioKAlpha2KAlpha1>0.5</ratioKAlpha2KAlpha1>
    </usedWavelength>
    <scan appendNumber="0" mode="Continuous" scanAxis="Gonio" status="Completed">
      <dataPoints>
        <positions axis="2Theta" unit="deg">{positions}</positions>
        <positions axis="Omega" unit="deg"><startPosition>{two_theta[0] / 2:.5f}</startPosition><endPosition>{two_theta[-1] / 2:.5f}</endPosition></positions>
        {extra}
        <{counts_tag} unit="counts">{" ".join(repr(float(c)) for c in counts)}</{counts_tag}>
      </dataPoints>
    </scan>
  </xrdMeasurement>
</xrdMeasurements>
"""
    )


def write_rruff(path: Path, name: str, two_theta, intensity, wavelength) -> None:
    """A RRUFF powder file: ##KEY=VALUE header, 'x, y' lines, ##END=."""
    lines = [f"##NAMES={name}", "##RRUFFID=R000000", f"##X-RAY WAVELENGTH={wavelength}", "##STATUS=lab17 measurement"]
    lines += [f"{x:.4f}, {y:.2f}" for x, y in zip(two_theta, intensity)]
    lines.append("##END=")
    path.write_text("\n".join(lines) + "\n")


# ------------------------------------------------------------------------------------ reading


def test_reads_every_lab17_pattern(lab17_dir):
    folders = lab17_folders(lab17_dir)
    assert len(folders) == 17
    for folder in folders:
        pattern = read_pattern(folder / "pattern.csv")
        reference = loadtxt_reference(folder / "pattern.csv")
        np.testing.assert_allclose(pattern.two_theta, reference[:, 0], rtol=0, atol=0)
        np.testing.assert_allclose(pattern.intensity, reference[:, 1], rtol=0, atol=0)
        assert np.all(np.diff(pattern.two_theta) > 0)
        assert pattern.wavelength is None and pattern.metadata["format"] == "text"


def test_xrdml_round_trip_on_lab17(lab17_dir, tmp_path):
    for folder in lab17_folders(lab17_dir):
        reference = loadtxt_reference(folder / "pattern.csv")
        two_theta, counts = reference[:, 0], reference[:, 1]
        listed = tmp_path / f"{folder.name}_listed.xrdml"
        write_xrdml(listed, two_theta, counts, CU_KA1, listed=True)
        back = read_pattern(listed)
        np.testing.assert_allclose(back.two_theta, two_theta, atol=1e-6)
        np.testing.assert_allclose(back.intensity, counts)
        assert back.wavelength == pytest.approx(CU_KA1)
        assert back.metadata["format"] == "xrdml"

        step = np.diff(two_theta)
        if np.ptp(step) < 1e-6 * np.mean(step) + 1e-9:  # evenly spaced: the start/end form (XRDML 1.x tags)
            ranged = tmp_path / f"{folder.name}_range.xrdml"
            write_xrdml(ranged, two_theta, counts, CU_KA1, listed=False, version="1.5")
            back = read_pattern(ranged)
            np.testing.assert_allclose(back.two_theta, two_theta, atol=1e-6)
            np.testing.assert_allclose(back.intensity, counts)


def test_xrdml_counting_times_and_attenuation(lab17_dir, tmp_path):
    reference = loadtxt_reference(lab17_dir / "Mn2O3" / "pattern.csv")
    two_theta, counts = reference[:, 0], reference[:, 1]
    times = np.where(np.arange(len(counts)) % 2 == 0, 0.5, 2.0)
    attenuation = np.where(two_theta < 30, 10.0, 1.0)
    path = tmp_path / "timed.xrdml"
    write_xrdml(
        path, two_theta, counts * times / attenuation, CU_KA1, listed=False, counting_times=times, attenuation=attenuation
    )
    back = read_pattern(path)
    np.testing.assert_allclose(back.intensity, counts, rtol=1e-5)


def test_rruff_round_trip_on_lab17(lab17_dir, tmp_path):
    for folder in lab17_folders(lab17_dir)[:6]:
        reference = loadtxt_reference(folder / "pattern.csv")
        path = tmp_path / f"{folder.name}__R000000__Powder__Xray_Data_XY_Processed.txt"
        write_rruff(path, folder.name, reference[:, 0], reference[:, 1], 1.541838)
        back = read_pattern(path)
        assert back.wavelength == pytest.approx(1.541838)
        assert back.metadata["format"] == "rruff" and back.metadata["NAMES"] == folder.name
        np.testing.assert_allclose(back.two_theta, reference[:, 0], atol=5.1e-5)  # written with 4 decimals
        np.testing.assert_allclose(back.intensity, reference[:, 1], atol=5.1e-3)


def test_text_variants_tab_space_header_comments(lab17_dir, tmp_path):
    reference = loadtxt_reference(lab17_dir / "ZnS" / "pattern.csv")
    body_tab = "\n".join(f"{x}\t{y}" for x, y in reference)
    body_space = "\n".join(f"  {x}   {y}   {np.sqrt(max(y, 0)):.3f}" for x, y in reference)  # third column: esd
    variants = {
        "tab.xy": "# ZnS, Cu Ka\n# wavelength = 1.5406\n2theta\tintensity\n" + body_tab,
        "space.txt": "! exported\n\n" + body_space + "\n\n",
    }
    for name, text in variants.items():
        path = tmp_path / name
        path.write_text(text)
        back = read_pattern(path)
        np.testing.assert_allclose(back.two_theta, reference[:, 0])
        np.testing.assert_allclose(back.intensity, reference[:, 1])
    assert read_pattern(tmp_path / "tab.xy").wavelength == pytest.approx(1.5406)
    assert read_pattern(tmp_path / "space.txt").wavelength is None


# ------------------------------------------------------------------------------- malformed files


def _lab17_lines(lab17_dir: Path, n: int = 20) -> list[str]:
    return (lab17_dir / "CdS" / "pattern.csv").read_text().splitlines()[:n]


MALFORMED = {
    "empty.csv": (lambda lines: "", "empty file"),
    "blank.xy": (lambda lines: "\n  \n\t\n", "empty file"),
    "header_only.csv": (lambda lines: "two_theta,intensity\n# nothing else\n", "no data lines"),
    "single_column.txt": (lambda lines: "\n".join(line.split(",")[0] for line in lines), "line 1: a single column"),
    "non_numeric.csv": (lambda lines: "\n".join(lines[:5] + ["10.6,abc"] + lines[5:]), "line 6: non-numeric value 'abc'"),
    "non_numeric_first.csv": (lambda lines: "\n".join(["10.0,12x"] + lines[1:]), "line 1: non-numeric value '12x'"),
    "nan.csv": (lambda lines: "\n".join(lines[:3] + [lines[3].split(",")[0] + ",nan"] + lines[4:]), "line 4: NaN"),
    "inf.csv": (lambda lines: "\n".join(lines[:3] + [lines[3].split(",")[0] + ",inf"] + lines[4:]), "line 4: NaN or infinite"),
    "decreasing.csv": (lambda lines: "\n".join(lines[:7] + [lines[9], lines[8], lines[7]] + lines[10:]), "line 9: 2θ decreases"),
    "reversed.csv": (lambda lines: "\n".join(lines[::-1]), "line 2: 2θ decreases"),
    "duplicated.csv": (lambda lines: "\n".join(lines[:10] + [lines[9]] + lines[10:]), "line 11: duplicated 2θ"),
    "one_point.csv": (lambda lines: lines[0], "only 1 data point"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_text_gives_one_line_naming_the_file(lab17_dir, tmp_path, name):
    make, expected = MALFORMED[name]
    path = tmp_path / name
    path.write_text(make(_lab17_lines(lab17_dir)))
    with pytest.raises(UserError) as info:
        read_pattern(path)
    message = str(info.value)
    assert message.startswith(str(path) + ": ") and "\n" not in message
    assert expected in message, message


def test_malformed_xrdml(lab17_dir, tmp_path):
    reference = loadtxt_reference(lab17_dir / "CdS" / "pattern.csv")
    good = tmp_path / "good.xrdml"
    write_xrdml(good, reference[:, 0], reference[:, 1], CU_KA1, listed=True)
    text = good.read_text()
    cases = {
        "truncated.xrdml": (text[: len(text) // 2], "not valid XML"),
        "mismatch.xrdml": (text.replace(f"{reference[0, 0]:.6f} ", "", 1), "listPositions but"),
        "nan.xrdml": (text.replace(f">{float(reference[0, 1])!r} ", ">nan ", 1), "NaN"),
        "letters.xrdml": (text.replace(f">{float(reference[0, 1])!r} ", ">x12 ", 1), "non-numeric value 'x12'"),
        "no_axis.xrdml": (text.replace('axis="2Theta"', 'axis="Chi"'), 'no <positions axis="2Theta">'),
        "decreasing.xrdml": (text.replace("<listPositions>", "<listPositions>80.0 "), "listPositions but"),
    }
    for name, (content, expected) in cases.items():
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(UserError) as info:
            read_pattern(path)
        assert str(info.value).startswith(str(path)) and expected in str(info.value), (name, str(info.value))
    reversed_path = tmp_path / "reversed.xrdml"
    write_xrdml(reversed_path, reference[::-1, 0], reference[::-1, 1], CU_KA1, listed=True)
    with pytest.raises(UserError, match="2θ decreases"):
        read_pattern(reversed_path)


# --------------------------------------------------------------------------------- preprocessing


def _mp40_structures(mp40_dir: Path, n: int):
    from pymatgen.core import Structure

    csv.field_size_limit(1 << 26)
    path = sorted(mp40_dir.glob("*.csv"))[0]
    structures = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structures.append(Structure.from_str(row["cif"], fmt="cif"))
            if len(structures) == n:
                break
    return structures


def test_wavelength_conversion_matches_pymatgen(mp40_dir):
    """Mo Kα peaks converted to Cu Kα land where pymatgen puts the Cu Kα peaks, on 25 structures."""
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    cu, mo = XRDCalculator(wavelength=CU_KA1), XRDCalculator(wavelength=MO_KA1)
    checked = 0
    for structure in _mp40_structures(mp40_dir, 25):
        cu_pattern = cu.get_pattern(structure, two_theta_range=(5, 90))
        mo_pattern = mo.get_pattern(structure, two_theta_range=(2, 40))
        strong = np.array(mo_pattern.y) > 2.0  # pymatgen drops peaks under 0.1 %; Lorentz factors differ by λ
        converted = convert_wavelength(np.array(mo_pattern.x)[strong], MO_KA1, CU_KA1)
        reachable = converted[np.isfinite(converted)]
        inside = reachable[(reachable > 5.5) & (reachable < 89.5)]
        for value in inside:
            assert np.min(np.abs(np.array(cu_pattern.x) - value)) < 1e-4  # pymatgen merges peaks closer than 1e-5 rad
            checked += 1
    assert checked > 200
    # and back: the round trip is the identity
    grid = np.linspace(5, 40, 100)
    np.testing.assert_allclose(convert_wavelength(convert_wavelength(grid, MO_KA1, CU_KA1), CU_KA1, MO_KA1), grid, atol=1e-9)


def test_preprocess_lab17_coverage_scaling_fill(lab17_dir):
    grid = GridConfig()
    two_theta = grid.two_theta()
    for folder in lab17_folders(lab17_dir):
        pattern = read_pattern(folder / "pattern.csv")
        edge = preprocess(pattern, grid, CU_KA1)
        zero = preprocess(pattern, grid, CU_KA1, fill="zero")
        root = preprocess(pattern, grid, CU_KA1, sqrt_scale=True)
        lo, hi = pattern.two_theta[0], pattern.two_theta[-1]
        covered = (two_theta >= lo) & (two_theta <= hi)
        assert edge.covered_fraction == pytest.approx(covered.mean())
        assert edge.wavelength_source == "assumed (model's)"
        for m in (edge, zero, root):
            assert m.x.dtype == np.float32 and m.x.shape == (grid.n_points,)
            assert m.x.min() == pytest.approx(0.0, abs=1e-7) and m.x.max() == pytest.approx(1.0)
        np.testing.assert_allclose(root.x, np.sqrt(edge.x), atol=1e-6)
        # inside the measured range: the linear interpolation of the measurement, min-max scaled
        raw = np.interp(two_theta[covered], pattern.two_theta, pattern.intensity)
        np.testing.assert_allclose(zero.x[covered], (raw - raw.min()) / np.ptp(raw), atol=1e-6)
        assert np.all(zero.x[~covered] == 0)
        if (~covered).any() and two_theta[0] < lo:  # the edge fill continues the first measured level
            first = np.argmax(covered)
            assert abs(edge.x[first - 1] - edge.x[first]) < 0.15


def test_preprocess_converts_wavelength_through_d_spacing(mp40_dir):
    """A pattern 'measured' with Mo Kα (pymatgen) gives the same model input as the Cu Kα one."""
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    grid = GridConfig(step=0.02)
    for structure in _mp40_structures(mp40_dir, 8):
        profiles = {}
        for wl, (lo, hi) in ((CU_KA1, (5, 90)), (MO_KA1, (2, 41))):
            peaks = XRDCalculator(wavelength=wl).get_pattern(structure, two_theta_range=(lo, hi))
            # a fixed width in d-spacing-neutral units: broaden in sin θ space so both wavelengths agree
            fine = np.linspace(lo, hi, 40000)
            s_fine = np.sin(np.radians(fine) / 2) / wl
            s_peaks = np.sin(np.radians(np.array(peaks.x)) / 2) / wl
            profile = (np.array(peaks.y)[:, None] * np.exp(-0.5 * ((s_fine[None] - s_peaks[:, None]) / 2e-4) ** 2)).sum(0)
            profiles[wl] = MeasuredPattern(fine, profile, wl, f"{structure.composition.reduced_formula}@{wl}")
        cu = preprocess(profiles[CU_KA1], grid, CU_KA1)
        mo = preprocess(profiles[MO_KA1], grid, CU_KA1)
        assert mo.wavelength_source == "file" and mo.covered_range[1] > 89
        assert np.argmax(cu.x) == pytest.approx(np.argmax(mo.x), abs=1)
        assert np.corrcoef(cu.x, mo.x)[0, 1] > 0.98


def test_preprocess_errors_name_the_file(lab17_dir):
    pattern = read_pattern(lab17_dir / "Ti-bcc" / "pattern.csv")  # 30-90°
    with pytest.raises(UserError, match="does not overlap"):
        preprocess(pattern, GridConfig(two_theta_min=5, two_theta_max=25), CU_KA1)
    with pytest.raises(UserError, match=r"Ti-bcc/pattern.csv: no measured point is reachable"):
        preprocess(pattern, GridConfig(), CU_KA1, wavelength=0.2)  # sin θ·1.54/0.2 > 1 from 30°: nothing survives
