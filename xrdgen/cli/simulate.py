"""`xrdgen simulate CIF -o out.png|out.xy`: a crystal's powder pattern, pure and with imperfections.

The imperfections are those of the config (`preset: measured`, or single `augmentation.*` switches):
the sample and instrument effects change the peaks, the rest is added to the pattern. Both columns
share the profile drawn from the seed, so their difference is the imperfections alone.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import typer

from xrdgen.cli.common import ConfigOption, SeedOption, SetOption, start_run
from xrdgen.errors import UserError


def read_structure(path: Path):
    """First structure of a CIF as a pymatgen Structure; any problem is one line naming the file."""
    from pymatgen.io.cif import CifParser  # lazy: seconds to import, and `xrdgen --help` would pay

    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structures = CifParser(str(path)).parse_structures(primitive=False)
    except Exception as exc:  # pymatgen raises many kinds on malformed text
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: not a readable CIF ({reason})") from None
    if not structures:
        raise UserError(f"{path}: no structure in the CIF")
    return structures[0]


def simulate(
    cif: Path = typer.Argument(..., help="Crystal structure (CIF)."),
    output: Path = typer.Option(..., "--output", "-o", help="out.png (plot) or out.xy (2θ, pure, with imperfections)."),
    impurity: Optional[Path] = typer.Option(None, "--impurity", help="CIF of an impurity phase to mix in (a ~ U[0, 5 %])."),
    crystallite_size: Optional[float] = typer.Option(None, "--size", help="Crystallite size in nm (default: drawn)."),
    config_path: Optional[Path] = ConfigOption,
    seed: Optional[int] = SeedOption,
    sets: Optional[list[str]] = SetOption,
) -> None:
    """Simulate the pattern of CIF on the configured grid, pure and with the configured imperfections."""
    suffix = output.suffix.lower()
    if suffix not in (".png", ".xy"):
        raise UserError(f"{output}: the output must end in .png or .xy")
    config = start_run(config_path, seed, sets)
    if crystallite_size is not None and crystallite_size <= 0:
        raise UserError(f"--size {crystallite_size}: a crystallite size must be positive")

    # Lazy: NumPy, Numba and pymatgen load only when a pattern is simulated, not for --help.
    import numpy as np

    from xrdgen.crystal import Crystal
    from xrdgen.simulation.imperfections import NO_EFFECTS, augment, draw_sample_effects
    from xrdgen.simulation.simulator import PatternSimulator

    simulator = PatternSimulator(config.simulation, config.grid)
    effects_rng = np.random.default_rng([config.seed, 1])
    effects = draw_sample_effects(config.augmentation, effects_rng)

    def pattern(path: Path, with_effects: bool) -> tuple[np.ndarray, object]:
        structure = read_structure(path)
        try:
            y = simulator.simulate(
                Crystal.from_structure(structure),
                np.random.default_rng(config.seed),
                crystallite_size,
                effects=effects if with_effects else NO_EFFECTS,
            )
        except ValueError as exc:
            raise UserError(f"{path}: {exc}") from None
        return y, structure

    pure, structure = pattern(cif, False)
    sample = pattern(cif, True)[0]
    impurity_pattern = pattern(impurity, True)[0] if impurity is not None else None
    imperfect = augment(sample, config.augmentation, effects_rng, config.grid, impurity=impurity_pattern)

    tt, inten = simulator.peaks(Crystal.from_structure(structure))
    strongest = np.argsort(inten)[::-1][:5]
    typer.echo(
        f"{cif}: {structure.composition.reduced_formula}, {len(structure)} sites, {len(tt)} peaks; strongest at "
        + ", ".join(f"{tt[i]:.3f}° ({inten[i]:.2f})" for i in sorted(strongest))
    )
    drawn = {key: value for key, value in vars(effects).items() if value not in (None, 0.0, 1.0)}
    typer.echo(f"preset {config.preset}; sample and instrument effects drawn: {drawn or 'none'}")

    output.parent.mkdir(parents=True, exist_ok=True)
    x = simulator.two_theta
    if suffix == ".xy":
        header = (
            f"{cif.name}: wavelength {simulator.wavelength} A, seed {config.seed}, preset {config.preset}\n"
            "two_theta_deg  pure  with_imperfections"
        )
        np.savetxt(output, np.column_stack([x, pure, imperfect]), fmt="%.5f", header=header)
    else:
        from xrdgen.plotting import pyplot  # lazy: matplotlib only for a PNG

        plt = pyplot()

        fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
        top.plot(x, pure, lw=0.8, color="C0")
        top.set_ylabel("pure")
        top.set_title(f"{structure.composition.reduced_formula} ({cif.name}), λ = {simulator.wavelength} Å")
        bottom.plot(x, imperfect, lw=0.6, color="C3")
        bottom.set_ylabel(f"with imperfections ({config.preset})")
        bottom.set_xlabel("2θ (degrees)")
        fig.tight_layout()
        fig.savefig(output, dpi=130)
        plt.close(fig)
    typer.echo(f"wrote {output}")


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
