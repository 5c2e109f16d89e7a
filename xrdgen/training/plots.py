"""The accuracy curves of a training run (accuracy.png in the run directory)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from xrdgen.plotting import pyplot, save_figure


def plot_history(history: list[dict], path: Path | str, title: str = "", n_classes: Optional[int] = None) -> Path:
    """Training accuracy and held-out top-1/top-5 per epoch, with the top-5 chance level min(5, K)/K."""
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.plot(epochs, [h["train_accuracy"] for h in history], label="training batches (top-1)")
    for key, label in (("test_top1", "held-out top-1"), ("test_top5", "held-out top-5")):
        if all(key in h for h in history):
            ax.plot(epochs, [h[key] for h in history], label=label)
    if n_classes:
        ax.axhline(min(5, n_classes) / n_classes, color="grey", linestyle="--", label="top-5 chance")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)
