"""`xrdgen generate STATS -n N -o OUT_DIR`: synthetic crystals as CIF files, with a summary.

Writes into OUT_DIR:
- `NNNNN_sgSSS.cif`   one P1 CIF per crystal (the conventional cell; SSS is spglib's space group);
- `summary.json`      config, seed, statistics file, crystals per space group, attempt outcomes;
- `spacegroups.png`   generated frequency per space group against the statistics' prior.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Optional

import typer

from xrdgen.cli.common import STATISTICS_HELP, ConfigOption, SeedOption, SetOption, announce, start_run, statistics_file
from xrdgen.errors import UserError
from xrdgen.jsonio import write_json


def write_outputs(crystals, generator, statistics, out_dir: Path, config, stats_path: Path) -> dict:
    """CIFs, summary.json and spacegroups.png for `crystals`; returns the summary."""
    # Lazy: pymatgen takes seconds to import, and `xrdgen --help` imports this module.
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.cif import CifWriter

    out_dir.mkdir(parents=True, exist_ok=True)
    for i, crystal in enumerate(crystals):
        # Generated crystals are ordered: one species per row, coordinates kept at full precision.
        structure = Structure(Lattice(crystal.lattice), [int(z) for z in crystal.numbers], crystal.frac_coords)
        CifWriter(structure).write_file(out_dir / f"{i:05d}_sg{crystal.spacegroup:03d}.cif")
    counts = Counter(int(c.spacegroup) for c in crystals)
    summary = {
        "statistics": str(stats_path),
        "seed": config.seed,
        "n_crystals": len(crystals),
        "path": config.generation.path,
        "crystals_per_spacegroup": {str(sg): counts[sg] for sg in sorted(counts)},
        "attempt_outcomes": dict(generator.outcomes),
        "config": config.model_dump(mode="json"),
    }
    write_json(out_dir / "summary.json", summary)
    _plot_spacegroups(counts, statistics, len(crystals), out_dir / "spacegroups.png")
    return summary


def _plot_spacegroups(counts, statistics, n: int, path: Path) -> None:
    # Lazy: NumPy and matplotlib only when a plot is drawn, not for --help.
    import numpy as np

    from xrdgen.plotting import pyplot

    plt = pyplot()
    sgs = statistics.spacegroups
    x = np.arange(len(sgs))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.12 * len(sgs)), 3.5))
    ax.bar(x, [counts.get(sg, 0) / max(n, 1) for sg in sgs], width=0.8, label=f"generated (n={n})", color="tab:blue")
    ax.plot(x, [statistics.prior[sg] for sg in sgs], "k.", label="prior of the statistics")
    step = max(1, len(sgs) // 30)
    ax.set_xticks(x[::step], [str(sg) for sg in sgs[::step]], rotation=90, fontsize=7)
    ax.set_xlabel("space group")
    ax.set_ylabel("fraction of crystals")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def generate(
    stats_path: Path = typer.Argument(..., help=STATISTICS_HELP),
    n: int = typer.Option(10, "-n", "--number", min=1, help="How many crystals."),
    out_dir: Path = typer.Option(..., "-o", "--out", help="Directory for the CIFs and the summary."),
    spacegroup: Optional[int] = typer.Option(None, "--spacegroup", help="Only this space group (default: drawn from the prior)."),
    config_path: Optional[Path] = ConfigOption,
    seed: Optional[int] = SeedOption,
    sets: Optional[list[str]] = SetOption,
) -> None:
    """Generate spglib-checked synthetic crystals from the statistics and write them as CIFs."""
    # Lazy: Numba, spglib and SciPy load only when crystals are generated, not for --help.
    from xrdgen.generation.generator import Generator
    from xrdgen.statistics.model import Statistics

    config = start_run(config_path, seed, sets, quiet=True)
    stats_path = statistics_file(stats_path)
    statistics = Statistics.load(stats_path)
    if spacegroup is not None and spacegroup not in statistics.per_spacegroup:
        raise UserError(f"{stats_path}: space group {spacegroup} is not among its {len(statistics.spacegroups)} classes")
    announce(config, out_dir)  # only now: bad input leaves no output folder behind
    generator = Generator(statistics, config.generation, config.seed)
    crystals = generator.generate_many(n, spacegroup=spacegroup, progress=True)
    summary = write_outputs(crystals, generator, statistics, out_dir, config, stats_path)
    typer.echo(f"wrote {n} CIFs, summary.json and spacegroups.png to {out_dir}")
    typer.echo(f"attempt outcomes: {summary['attempt_outcomes']}")


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
