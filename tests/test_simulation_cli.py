"""`xrdgen simulate`: a real CIF to a PNG and an .xy; bad input is one line and exit status 2."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from xrdgen.cli import app


@pytest.fixture(scope="module")
def cif(lab17_dir):
    return sorted(lab17_dir.glob("*/structure.cif"))[0]


def test_simulate_writes_xy_and_png(cif, tmp_path):
    runner = CliRunner()
    xy = tmp_path / "out.xy"
    result = runner.invoke(app, ["simulate", str(cif), "-o", str(xy), "--seed", "4", "--size", "40"])
    assert result.exit_code == 0, result.output
    data = np.loadtxt(xy)
    assert data.shape == (8501, 3)
    np.testing.assert_allclose(data[[0, -1], 0], [5.0, 90.0])
    assert data[:, 1].max() == pytest.approx(1.0, abs=1e-5) and data[:, 2].max() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(data[:, 1], data[:, 2], atol=1e-5)  # the default preset is pure
    assert "preset pure" in result.output and "drawn: none" in result.output
    measured = tmp_path / "measured.xy"
    result = runner.invoke(app, ["simulate", str(cif), "-o", str(measured), "--seed", "4", "--set", "preset=measured"])
    assert result.exit_code == 0, result.output
    data = np.loadtxt(measured)
    assert np.abs(data[:, 1] - data[:, 2]).max() > 1e-2  # imperfections were added
    assert "march_dollase_r" in result.output and "debye_waller_b" in result.output
    png = tmp_path / "out.png"
    result = runner.invoke(app, ["simulate", str(cif), "-o", str(png), "--set", "simulation.profile=pseudo_voigt"])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_cif_is_one_line_with_status_2(tmp_path):
    bad = tmp_path / "broken.cif"
    bad.write_text("data_x\n_cell_length_a 3\nnot a cif at all\n")
    result = subprocess.run(
        [sys.executable, "-c", "from xrdgen.cli import main; main()", "simulate", str(bad), "-o", str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "Traceback" not in result.stderr
    result = subprocess.run(
        [sys.executable, "-c", "from xrdgen.cli import main; main()", "simulate", str(bad), "-o", str(tmp_path / "x.pdf")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and ".png or .xy" in result.stderr
