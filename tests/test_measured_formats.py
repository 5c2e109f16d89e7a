"""Instrument and exchange formats (GSAS, Rigaku .ras, Bruker .brml/.raw v3; pdCIF in test_pdcif.py) and the repairs
every reader shares (points outside (0°, 180°), zero padding, a stray mistyped 2θ), on real lab17
measurements written out in each format's layout and read back; malformed variants of each give one
line naming the file.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from xrdgen.errors import UserError
from xrdgen.measured.readers import read_pattern

CU_KA1 = 1.540598


@pytest.fixture(scope="module")
def zns(lab17_dir) -> np.ndarray:
    """A real measurement (ZnS, lab17): columns 2θ, counts."""
    return np.loadtxt(lab17_dir / "ZnS" / "pattern.csv", delimiter=",", ndmin=2)


def assert_same(pattern, reference: np.ndarray, atol_x: float = 1e-6, rtol_y: float = 1e-6) -> None:
    np.testing.assert_allclose(pattern.two_theta, reference[:, 0], atol=atol_x)
    np.testing.assert_allclose(pattern.intensity, reference[:, 1], rtol=rtol_y, atol=1e-9)


def one_line_error(path: Path, expected: str) -> None:
    with pytest.raises(UserError) as info:
        read_pattern(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message and expected in message, message


# ---------------------------------------------------------------------------- shared repairs


def test_rruff_csv_starting_at_zero_reads_with_notes(zns, tmp_path):
    """RRUFF's CSV layout: header, rows from 2θ = 0 with zero counts, then the measurement."""
    pad = np.arange(0, zns[0, 0] - 1e-9, 0.01)
    path = tmp_path / "R000000.csv"
    rows = [f"{x:.2f},0.0" for x in pad] + [f"{x},{y}" for x, y in zns]
    path.write_text("angle,intensity\n" + "\n".join(rows) + "\n")
    pattern = read_pattern(path)
    assert_same(pattern, zns)
    assert any("outside (0°, 180°)" in n and "0–0°" in n for n in pattern.notes), pattern.notes
    assert any(f"dropped {len(pad) - 1} leading point(s) with zero counts" in n for n in pattern.notes), pattern.notes


def test_points_beyond_180_dropped_and_single_zeros_kept(zns, tmp_path):
    data = zns.copy()
    data[0, 1] = 0.0  # one zero reading at the start is a reading, not padding
    path = tmp_path / "wide.xy"
    path.write_text("\n".join(f"{x} {y}" for x, y in data) + "\n180.0 5\n181.5 7\n")
    pattern = read_pattern(path)
    assert_same(pattern, data)
    assert pattern.notes == ["dropped 2 point(s) at 2θ outside (0°, 180°) (180–181.5°)"]


def test_one_mistyped_two_theta_is_dropped_by_line(zns, tmp_path):
    """RRUFF R040182 has 4.76 between 44.75 and 44.77: a dropped digit, not a reversed axis."""
    lines = [f"{x},{y}" for x, y in zns]
    bad = len(lines) // 2
    lines[bad] = f"{zns[bad, 0] / 10:.4f},{zns[bad, 1]}"
    path = tmp_path / "typo.csv"
    path.write_text("two_theta,intensity\n" + "\n".join(lines) + "\n")
    pattern = read_pattern(path)
    assert_same(pattern, np.delete(zns, bad, axis=0))
    assert f"line {bad + 2} " in pattern.notes[0] and "out of 2θ order" in pattern.notes[0]
    swapped = lines[:5] + [lines[7], lines[6], lines[5]] + lines[8:]  # three out of order: still an error
    path.write_text("\n".join(swapped[:400]) + "\n")
    one_line_error(path, "2θ decreases")


def test_nothing_left_inside_the_physical_range(tmp_path):
    path = tmp_path / "all_zero_angle.csv"
    path.write_text("0,1\n0,2\n200,3\n")
    one_line_error(path, "only 0 data point inside (0°, 180°)")


# -------------------------------------------------------------------------------------- GSAS


def test_gsas_xye_fxye_esd_std(zns, tmp_path):
    sigma = np.sqrt(np.maximum(zns[:, 1], 1))
    xye = tmp_path / "zns.xye"
    xye.write_text("/*\n# zns.gpx  Cu Ka\n*/\n" + "\n".join(f"{x:.5f} {y:.3f} {s:.3f}" for (x, y), s in zip(zns, sigma)) + "\n")
    assert_same(read_pattern(xye), zns, atol_x=1e-5, rtol_y=1e-5)

    fxye = tmp_path / "zns.fxye"
    bank = f"BANK 1 {len(zns)} {len(zns)} CONS {zns[0, 0] * 100:.4f} 0.0 0 0 FXYE"
    fxye.write_text(
        "lab17 ZnS\nInstrument parameter file: cu.prm\n"
        + bank
        + "\n"
        + "\n".join(f"{x * 100:.5f} {y:.4f} {s:.4f}" for (x, y), s in zip(zns, sigma))
        + "\n"
    )
    pattern = read_pattern(fxye)
    assert_same(pattern, zns, atol_x=1e-6, rtol_y=1e-6)
    assert pattern.metadata["format"] == "gsas-fxye" and pattern.metadata["title"] == "lab17 ZnS"

    even = np.column_stack([zns[0, 0] + 0.02 * np.arange(len(zns)), np.round(zns[:, 1])])
    start, step = even[0, 0] * 100, 2.0
    esd_cells = [f"{y:8.0f}{np.sqrt(max(y, 1)):8.2f}" for y in even[:, 1]]
    std_cells = [f"{1:2d}{y:6.0f}" for y in even[:, 1]]
    for kind, cells, per_line in (("ESD", esd_cells, 5), ("STD", std_cells, 10)):
        path = tmp_path / f"zns_{kind}.gsa"
        lines = ["".join(cells[k : k + per_line]) for k in range(0, len(cells), per_line)]
        path.write_text(
            f"lab17 ZnS\nBANK 1 {len(even)} {len(lines)} CONST {start:.2f} {step:.2f} 0 0 {kind}\n" + "\n".join(lines) + "\n"
        )
        assert_same(read_pattern(path), even, atol_x=1e-9, rtol_y=0)


def test_gsas_malformed(tmp_path):
    cases = {
        "nobank.fxye": ("title\n1000 5 1\n1001 6 1\n", "no BANK line"),
        "tof_fxye.gsa": ("title\nBANK 1 2 2 SLOG 1000 20000 0.0004 0 FXYE\n1000 5 1\n1001 6 1\n", "binning SLOG not supported"),
        "tof_esd.gsa": ("title\nBANK 1 2 1 SLOG 1000 20000 0.0004 0 ESD\n       1       1\n", "binning SLOG not supported"),
        "letters.fxye": ("title\nBANK 1 2 2 CONS 1000 1 0 0 FXYE\n1000 5 1\n10x1 6 1\n", "malformed GSAS data"),
        "odd.gsa": ("title\nBANK 1 2 1 CONST 1000 1 0 0 ALT\n 1 2\n", "data type ALT not supported"),
    }
    for name, (content, expected) in cases.items():
        path = tmp_path / name
        path.write_text(content)
        one_line_error(path, expected)


# ------------------------------------------------------------------------------------ Rigaku


def write_ras(path: Path, data: np.ndarray, factors: np.ndarray, wavelength: float, scans: int = 1) -> None:
    block = [
        "*RAS_HEADER_START",
        '*FILE_COMMENT "lab17 ZnS"',
        f'*HW_XG_WAVE_LENGTH_ALPHA1 "{wavelength}"',
        '*MEAS_SCAN_AXIS_X "TwoThetaTheta"',
        "*RAS_HEADER_END",
        "*RAS_INT_START",
        *(f"{x:.4f} {c:.1f} {f:.4f}" for (x, c), f in zip(data, factors)),
        "*RAS_INT_END",
    ]
    path.write_bytes(("*RAS_DATA_START\n" + "\n".join(block * scans) + "\n*RAS_DATA_END\n").encode("shift_jis"))


def test_ras_round_trip_with_attenuator_factors(zns, tmp_path):
    factors = np.where(zns[:, 1] > np.median(zns[:, 1]), 10.0, 1.0)
    path = tmp_path / "zns.ras"
    write_ras(path, np.column_stack([zns[:, 0], zns[:, 1] / factors]), factors, CU_KA1, scans=2)
    pattern = read_pattern(path)
    assert_same(pattern, zns, atol_x=5.1e-5, rtol_y=1e-3)
    assert pattern.wavelength == pytest.approx(CU_KA1) and pattern.notes == ["read the first of 2 scans"]
    text = path.read_text(encoding="shift_jis")
    cases = {
        "truncated.ras": (text[: text.index("*RAS_INT_END")], "no *RAS_INT_END"),
        "letters.ras": (text.replace(f"{zns[2, 0]:.4f} ", "x.y ", 1), "non-numeric value"),
        "no_block.ras": (text.replace("*RAS_INT_START", "*RAS_INT_BEGIN"), "no *RAS_INT_START block"),
        "bad_wavelength.ras": (text.replace(f'"{CU_KA1}"', '"CuKa"'), "HW_XG_WAVE_LENGTH_ALPHA1 'CuKa' is not a number"),
    }
    for name, (content, expected) in cases.items():
        bad = tmp_path / name
        bad.write_text(content)
        one_line_error(bad, expected)


# ------------------------------------------------------------------------------------ Bruker


def write_brml(path: Path, data: np.ndarray, wavelength: float, axes=("TwoTheta", "Theta")) -> None:
    info = "".join(f'<ScanAxisInfo AxisId="{a}" AxisName="{a}"><Start>0</Start></ScanAxisInfo>' for a in axes)
    datums = "".join(
        f"<Datum>0.5,1,{','.join(f'{x:.5f}' if a == 'TwoTheta' else f'{x / 2:.5f}' for a in axes)},{y:g}</Datum>" for x, y in data
    )
    xml = (
        '<?xml version="1.0" encoding="utf-8"?><RawData xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f'<FixedInformation><Instrument><PrimaryTracks><TrackInfoData><MountedOptics><InfoData><Tube><WaveLengthAlpha1 Value="{wavelength}" Unit="Å"/>'
        "</Tube></InfoData></MountedOptics></TrackInfoData></PrimaryTracks></Instrument></FixedInformation>"
        f"<DataRoutes><DataRoute><ScanInformation><ScanAxes>{info}</ScanAxes></ScanInformation>{datums}</DataRoute></DataRoutes></RawData>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("Experiment0/RawData0.xml", xml)
        archive.writestr("Experiment0/DataContainer.xml", "<DataContainer/>")


def test_brml_round_trip(zns, tmp_path):
    for axes in (("TwoTheta", "Theta"), ("Theta", "TwoTheta")):  # the 2θ column follows the axis order
        path = tmp_path / f"zns_{axes[0]}.brml"
        write_brml(path, zns, CU_KA1, axes)
        pattern = read_pattern(path)
        assert_same(pattern, zns, atol_x=5.1e-6)
        assert pattern.wavelength == pytest.approx(CU_KA1) and pattern.metadata["format"] == "brml"
    (tmp_path / "notzip.brml").write_text("<RawData/>")
    one_line_error(tmp_path / "notzip.brml", "not a zip archive")
    with zipfile.ZipFile(tmp_path / "empty.brml", "w") as archive:
        archive.writestr("Experiment0/DataContainer.xml", "<x/>")
    one_line_error(tmp_path / "empty.brml", "no RawData*.xml")
    with zipfile.ZipFile(tmp_path / "letters.brml", "w") as archive:
        archive.writestr(
            "Experiment0/RawData0.xml", "<RawData><Datum>0.5,1,10.0,5.0,12</Datum><Datum>0.5,1,10.1,5.05,1x</Datum></RawData>"
        )
    one_line_error(tmp_path / "letters.brml", "non-numeric <Datum> '0.5,1,10.1,5.05,1x'")


def write_bruker_raw_v3(path: Path, ranges: list[tuple[float, float, np.ndarray]], wavelength: float) -> None:
    """RAW1.01 from the published layout: 712-byte file header, 304-byte range headers, float32 counts."""
    header = bytearray(712)
    header[:7] = b"RAW1.01"
    struct.pack_into("<I", header, 8, 1)  # status: done
    struct.pack_into("<I", header, 12, len(ranges))
    struct.pack_into("<d", header, 624, wavelength)
    out = io.BytesIO()
    out.write(bytes(header))
    for start, step, counts in ranges:
        block = bytearray(304)
        struct.pack_into("<II", block, 0, 304, len(counts))
        struct.pack_into("<dd", block, 8, start / 2, start)
        struct.pack_into("<d", block, 176, step)
        struct.pack_into("<I", block, 256, 16)  # a 16-byte supplementary header follows
        out.write(bytes(block) + bytes(16) + counts.astype("<f4").tobytes())
    path.write_bytes(out.getvalue())


def test_bruker_raw_v3_round_trip_and_refusals(zns, tmp_path):
    counts = np.round(zns[:, 1]).astype(np.float32)
    start, step = 10.0, 0.02
    path = tmp_path / "zns.raw"
    write_bruker_raw_v3(path, [(start, step, counts), (60.0, 0.05, counts[:10])], CU_KA1)
    pattern = read_pattern(path)
    np.testing.assert_allclose(pattern.two_theta, start + step * np.arange(len(counts)), atol=1e-9)
    np.testing.assert_array_equal(pattern.intensity, counts.astype(np.float64))
    assert pattern.wavelength == pytest.approx(CU_KA1) and pattern.notes == ["read the first of 2 ranges"]
    path.write_bytes(path.read_bytes()[: -100 - 4 * len(counts)])
    one_line_error(path, "truncated")
    (tmp_path / "v4.raw").write_bytes(b"RAW4.00" + bytes(600))
    one_line_error(tmp_path / "v4.raw", "Bruker RAW version 4 is not supported")
    (tmp_path / "gsas.raw").write_text("title\nBANK 1 2 2 CONS 1000 1 0 0 FXYE\n1000 5 1\n1001 6 1\n")
    assert read_pattern(tmp_path / "gsas.raw").metadata["format"] == "gsas-fxye"
    (tmp_path / "other.raw").write_bytes(b"\x00\x01binary")
    one_line_error(tmp_path / "other.raw", "neither a Bruker RAW file")
