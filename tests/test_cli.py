"""The `xrdgen` front door: `--help` loads no heavy library, and `default` means the shipped statistics.

Why the import boundary and not a time: `xrdgen --help` took seconds when every command module
imported pymatgen, Numba, Ray and TensorFlow at its top; a timed assertion would flake on a loaded
machine, while the set of loaded modules is exact.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

HEAVY = ("ray", "tensorflow", "keras", "pymatgen", "numba", "pyxtal", "jax")

# Runs in a fresh interpreter: the test process itself has long imported all of them.
HELP_EVERY_COMMAND = """
import json, sys
import typer
from typer.testing import CliRunner
from xrdgen.cli import app

def paths(command, prefix):
    yield prefix
    if hasattr(command, "commands"):  # a group (typer may carry its own copy of click)
        for name, sub in command.commands.items():
            yield from paths(sub, prefix + [name])

runner = CliRunner()
failed, seen = [], []
for args in paths(typer.main.get_command(app), []):
    result = runner.invoke(app, args + ["--help"])
    seen.append(" ".join(args))
    if result.exit_code != 0 or "Usage:" not in result.output:
        failed.append((args, result.exit_code, result.output[-300:]))
loaded = sorted({name.split(".")[0] for name in sys.modules} & set(%r))
print(json.dumps({"seen": seen, "failed": failed, "loaded": loaded}))
"""


def test_help_of_every_command_loads_no_heavy_library():
    result = subprocess.run([sys.executable, "-c", HELP_EVERY_COMMAND % (HEAVY,)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"", "run", "stats", "stats build", "stats show", "predict", "train", "experiment"} <= set(report["seen"])
    assert report["failed"] == []
    assert report["loaded"] == [], f"`xrdgen ... --help` imported {report['loaded']}: move them into the command bodies"


def test_console_script_help_loads_no_heavy_library():
    """The installed entry point `main()`, as `xrdgen --help` runs it."""
    code = (
        "import sys\n"
        "from xrdgen.cli import main\n"
        "sys.argv = ['xrdgen', '--help']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
        f"print(sorted({{n.split('.')[0] for n in sys.modules}} & set({HEAVY!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Commands" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_stats_show_default_prints_the_shipped_statistics():
    """`default` is the shipped statistics wherever a statistics file is asked for."""
    from typer.testing import CliRunner

    from xrdgen.cli import app

    shipped = Path(str(files("xrdgen").joinpath("data", "default_statistics.json.gz")))
    with gzip.open(shipped, "rt") as handle:
        classes = json.load(handle)["spacegroups"]  # read directly, not through the code under test
    assert len(classes) == 109
    result = CliRunner().invoke(app, ["stats", "show", "default"])
    assert result.exit_code == 0, result.output
    assert f"statistics file: {shipped}" in result.output
    assert "class list: 109 classes" in result.output
    listed = next(line for line in result.output.splitlines() if line.strip().startswith("class list: 1 "))
    assert [int(sg) for sg in listed.split(":", 1)[1].split()] == classes


def test_default_is_not_a_collection(tmp_path):
    """`stats build default` does not quietly read the embedded structures: one line says what the names mean."""
    result = subprocess.run(
        [sys.executable, "-c", "from xrdgen.cli import main; main()", "stats", "build", "default", "-o", "x.json", "--serial"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "error: 'default' names the statistics shipped in the package" in result.stderr
    assert "'embedded'" in result.stderr and "Traceback" not in result.stderr
