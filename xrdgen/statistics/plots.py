"""Figures that compare the statistics with the samples drawn from them.

Space-group prior (all space groups vs the class list), lattice KDE marginals vs the unit-volume
data per crystal system, and volume KDE draws f | V_atomic vs the (V_atomic, f) data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xrdgen.geometry import LATTICE_PARAMETER_NAMES, free_parameters
from xrdgen.plotting import pyplot
from xrdgen.statistics.model import Statistics


def plot_statistics(statistics: Statistics, prefix: Path | str, seed: int = 0, n_samples: int = 4000) -> list[Path]:
    """PNGs: space-group prior, lattice KDE marginals vs data, denseness samples vs data.

    Files are `<prefix>.prior.png`, `<prefix>.lattice.png`, `<prefix>.denseness.png`.
    """
    plt = pyplot()

    prefix = str(prefix)
    rng = np.random.default_rng(seed)
    written = []

    fig, ax = plt.subplots(figsize=(12, 4))
    all_sgs = sorted(statistics.per_spacegroup)
    ax.bar(all_sgs, [statistics.per_spacegroup[sg].count for sg in all_sgs], color="0.75", width=1.0, label="all space groups")
    ax.bar(statistics.spacegroups, [statistics.per_spacegroup[sg].count for sg in statistics.spacegroups], color="C0", width=1.0,
           label=f"classes (>= {statistics.provenance.get('min_count_per_spacegroup', '?')}): {len(statistics.spacegroups)}")
    ax.set_xlabel("space group number")
    ax.set_ylabel("structures in the statistics part")
    ax.set_xlim(0, 231)
    ax.legend()
    source = ", ".join(Path(part.strip()).name for part in str(statistics.provenance.get("source", "")).split(","))
    ax.set_title(f"space-group prior — {source[:90]}")
    fig.tight_layout()
    written.append(Path(prefix + ".prior.png"))
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    systems = [s for s in LATTICE_PARAMETER_NAMES if s != "cubic" and len(statistics.lattice_samples.get(s, ())) >= len(LATTICE_PARAMETER_NAMES[s]) + 2]
    if systems:
        fig, axes = plt.subplots(len(systems), 6, figsize=(16, 2.4 * len(systems)), squeeze=False)
        for row, system in enumerate(systems):
            data = statistics.lattice_samples[system]
            try:
                draws = np.array([free_parameters(system, statistics.sample_lattice_parameters(system, rng)) for _ in range(n_samples)])
            except (ValueError, RuntimeError):
                draws = None
            for col in range(6):
                ax = axes[row, col]
                if col >= data.shape[1]:
                    ax.axis("off")
                    continue
                bins = np.linspace(*np.percentile(data[:, col], [0.5, 99.5]), 40)
                ax.hist(data[:, col], bins=bins, density=True, color="0.6", label=f"data (n={len(data)})")
                if draws is not None:
                    ax.hist(draws[:, col], bins=bins, density=True, histtype="step", color="C3", lw=1.5, label="KDE draws")
                ax.set_title(f"{system}: {LATTICE_PARAMETER_NAMES[system][col]}", fontsize=9)
                if col == 0:
                    ax.legend(fontsize=7)
        fig.suptitle("unit-volume lattice parameters (lengths in V^(1/3), angles in rad)")
        fig.tight_layout()
        written.append(Path(prefix + ".lattice.png"))
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)

    v = statistics.volume_samples
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter(v[:, 0], v[:, 1], s=4, color="0.5", label="data")
    pick = rng.choice(len(v), size=min(n_samples, 2000), replace=True)
    draws = [statistics.sample_denseness(v[i, 0], rng) for i in pick]
    ax.scatter(v[pick, 0], draws, s=4, color="C3", alpha=0.5, label="conditional KDE draws")
    ax.set_xscale("log")
    ax.set_xlabel("V_atomic [Å³]")
    ax.set_ylabel("denseness factor f = V_cell / V_atomic")
    ax.legend()
    fig.tight_layout()
    written.append(Path(prefix + ".denseness.png"))
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written
