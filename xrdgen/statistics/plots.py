"""Figures that compare the statistics with the samples drawn from them.

Space-group prior (all space groups vs the class list), lattice KDE marginals vs the unit-volume
data per crystal system, volume KDE draws f | V_atomic vs the (V_atomic, f) data (each row drawn
from its space group's KDE, as the generator draws), and, for the space groups with the most
structures among those with their own volume KDE, their data against draws of their KDE.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xrdgen.geometry import LATTICE_PARAMETER_NAMES, free_parameters
from xrdgen.plotting import pyplot
from xrdgen.statistics.model import Statistics

PER_SPACEGROUP_PANELS = 6


def plot_statistics(statistics: Statistics, prefix: Path | str, seed: int = 0, n_samples: int = 4000) -> list[Path]:
    """PNGs: space-group prior, lattice KDE marginals vs data, denseness samples vs data.

    Files are `<prefix>.prior.png`, `<prefix>.lattice.png`, `<prefix>.denseness.png` and, when
    some space group has its own volume KDE, `<prefix>.denseness_per_spacegroup.png`.
    """
    plt = pyplot()

    prefix = str(prefix)
    rng = np.random.default_rng(seed)
    written = []

    fig, ax = plt.subplots(figsize=(12, 4))
    all_sgs = sorted(statistics.per_spacegroup)
    ax.bar(all_sgs, [statistics.per_spacegroup[sg].count for sg in all_sgs], color="0.75", width=1.0, label="all space groups")
    ax.bar(
        statistics.spacegroups,
        [statistics.per_spacegroup[sg].count for sg in statistics.spacegroups],
        color="C0",
        width=1.0,
        label=f"classes (>= {statistics.provenance.get('min_count_per_spacegroup', '?')}): {len(statistics.spacegroups)}",
    )
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

    systems = [
        s
        for s in LATTICE_PARAMETER_NAMES
        if s != "cubic" and len(statistics.lattice_samples.get(s, ())) >= len(LATTICE_PARAMETER_NAMES[s]) + 2
    ]
    if systems:
        fig, axes = plt.subplots(len(systems), 6, figsize=(16, 2.4 * len(systems)), squeeze=False)
        for row, system in enumerate(systems):
            data = statistics.lattice_samples[system]
            try:
                draws = np.array(
                    [free_parameters(system, statistics.sample_lattice_parameters(system, rng)) for _ in range(n_samples)]
                )
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
    groups = np.asarray(statistics.volume_spacegroups, dtype=np.int64)
    if len(groups) != len(v):
        groups = np.zeros(len(v), dtype=np.int64)  # no space group per row: every row on the pooled KDE
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter(v[:, 0], v[:, 1], s=4, color="0.5", label="data")
    pick = rng.choice(len(v), size=min(n_samples, 2000), replace=True)
    draws = [statistics.sample_denseness(groups[i], v[i, 0], rng) for i in pick]
    ax.scatter(v[pick, 0], draws, s=4, color="C3", alpha=0.5, label="conditional KDE draws (own space group's KDE)")
    ax.set_xscale("log")
    ax.set_xlabel("V_atomic [Å³]")
    ax.set_ylabel("denseness factor f = V_cell / V_atomic")
    ax.legend()
    fig.tight_layout()
    written.append(Path(prefix + ".denseness.png"))
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    per_spacegroup = plot_volume_kdes(statistics, prefix + ".denseness_per_spacegroup.png", rng)
    return written + ([per_spacegroup] if per_spacegroup else [])


def plot_volume_kdes(statistics: Statistics, path: Path | str, rng: np.random.Generator, draws_per_row: int = 5):
    """Per space group with its own volume KDE (the most structures first): (V_atomic, f) data and
    KDE draws at the data's V_atomic (top), and the marginal of f, data vs draws (bottom).

    The draws at the data's own V_atomic values have the data's f-marginal when the KDE fits
    (up to the kernel's smoothing). Returns the PNG's path, or None when no space group has its own KDE.
    """
    plt = pyplot()
    groups = np.asarray(statistics.volume_spacegroups, dtype=np.int64)
    own = sorted(statistics.volume_bandwidths, key=lambda sg: -int(np.sum(groups == sg)))[:PER_SPACEGROUP_PANELS]
    if not own:
        return None
    fig, axes = plt.subplots(2, len(own), figsize=(2.9 * len(own), 5.4), squeeze=False)
    for col, sg in enumerate(own):
        data, (bw_f, bw_v), _ = statistics.volume_kde(sg)
        v_at = np.repeat(data[:, 0], draws_per_row)
        draws = np.array([statistics.sample_denseness(sg, x, rng) for x in v_at])
        top, bottom = axes[0, col], axes[1, col]
        top.scatter(v_at, draws, s=3, color="C3", alpha=0.3, label="KDE draws")
        top.scatter(data[:, 0], data[:, 1], s=6, color="k", label=f"data (n={len(data)})")
        top.set_xscale("log")
        top.tick_params(axis="x", which="minor", labelbottom=False)  # log-axis minor labels overlap
        top.set_title(f"space group {sg}\nh_f={bw_f:.3f}, h_V={bw_v:.0f} Å³", fontsize=9)
        top.set_xlabel("V_atomic [Å³]", fontsize=8)
        bins = np.linspace(*np.percentile(np.concatenate([data[:, 1], draws]), [0.5, 99.5]), 30)
        bottom.hist(data[:, 1], bins=bins, density=True, color="0.6", label="data")
        bottom.hist(draws, bins=bins, density=True, histtype="step", color="C3", lw=1.5, label="KDE draws")
        bottom.set_xlabel("denseness factor f", fontsize=8)
        if col == 0:
            top.set_ylabel("f = V_cell / V_atomic")
            top.legend(fontsize=7)
            bottom.legend(fontsize=7)
    fig.suptitle("volume KDE per space group: p(f | V_atomic) fitted on the space group's own structures")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
