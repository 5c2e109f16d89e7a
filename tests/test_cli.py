"""The `xrdgen` front door: `--help` loads no heavy library, and `default` means the shipped statistics.

Why the import boundary and not a time: `xrdgen --help` took seconds when every command module
imported pymatgen, Numba, Ray and TensorFlow at its top; a timed assertion would flake on a loaded
machine, while the set of loaded modules is exact.
"""

from __future__ import annotations

import json
import subprocess
import sys

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
