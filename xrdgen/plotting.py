"""Matplotlib without a display: every PNG of the project is drawn and written through here.

Why one place: plots are written from Ray workers, CI and ssh sessions where no display exists, so
the Agg backend is chosen before pyplot is imported, and every figure is closed after saving so that
long runs do not accumulate open figures.
"""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the Agg backend."""
    import matplotlib  # lazy: the backend must be chosen before pyplot is first imported

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: E402 - only after the backend is set

    return plt


def save_figure(fig, path: Path | str, dpi: int = 120) -> Path:
    """Tight layout, write the PNG (its folder made if missing), close the figure; returns the path."""
    import matplotlib.pyplot as plt  # lazy: after `pyplot()` chose the backend

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return Path(path)
