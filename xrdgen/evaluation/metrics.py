"""What a trained model says about labelled patterns: top-k accuracy, per-space-group recall, crystal systems.

Counted as in the method's evaluation (Schopf et al., supplementary S3 and Figures S7/S8):
- top-k accuracy for k = 1..10: the share of patterns whose true space group is among the k most
  probable classes; a label outside the model's class list counts as a miss at every k (and is
  counted apart);
- per space group: recall (top-1) = correct / count of that group's patterns;
- confusion by crystal system: true system (rows) against the top-1 prediction's system.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pymatgen.symmetry.groups import sg_symbol_from_int_number

from xrdgen.geometry import CRYSTAL_SYSTEMS, crystal_system

SYSTEM_NAMES = tuple(name for name, _, _ in CRYSTAL_SYSTEMS)  # rows/columns of the confusion matrix
K_MAX = 10


def spacegroup_symbol(spacegroup: int) -> str:
    """Hermann-Mauguin symbol of a space-group number (pymatgen's table)."""
    return sg_symbol_from_int_number(int(spacegroup))


def top_k(probabilities: np.ndarray, spacegroups: Sequence[int], k: int) -> list[list[dict]]:
    """Per pattern, the k most probable space groups with probability, symbol and crystal system."""
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [
        [
            {
                "spacegroup": int(spacegroups[j]),
                "symbol": spacegroup_symbol(spacegroups[j]),
                "crystal_system": crystal_system(spacegroups[j]),
                "probability": float(row[j]),
            }
            for j in ranks
        ]
        for row, ranks in zip(probabilities, order)
    ]


@dataclass
class Evaluation:
    """Accuracies of one labelled set; `to_dict` is the JSON summary."""

    name: str
    n: int
    top_k_accuracy: list[float]  # index k-1
    per_spacegroup: dict[int, dict]  # spacegroup -> {count, correct, recall}
    system_confusion: np.ndarray  # (7, 7) counts, true system x top-1 predicted system
    n_outside_classes: int
    skipped: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "n": self.n,
            "top_k_accuracy": {str(k + 1): a for k, a in enumerate(self.top_k_accuracy)},
            "n_outside_class_list": self.n_outside_classes,
            "per_spacegroup": {str(sg): v for sg, v in sorted(self.per_spacegroup.items())},
            "crystal_systems": list(SYSTEM_NAMES),
            "crystal_system_confusion": self.system_confusion.tolist(),
            "crystal_system_accuracy": float(np.trace(self.system_confusion) / max(self.system_confusion.sum(), 1)),
            "skipped": self.skipped,
        }


def evaluate(probabilities: np.ndarray, labels: Sequence[int], spacegroups: Sequence[int], name: str = "test", k_max: int = K_MAX) -> Evaluation:
    """Top-k accuracy (k = 1..k_max), per-space-group recall and crystal-system confusion."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if probabilities.shape != (n, len(spacegroups)):
        raise ValueError(f"probabilities {probabilities.shape} do not match {n} labels x {len(spacegroups)} classes")
    index_of = {int(sg): i for i, sg in enumerate(spacegroups)}
    true_index = np.array([index_of.get(int(sg), -1) for sg in labels], dtype=np.int64)
    inside = true_index >= 0
    order = np.argsort(-probabilities, axis=1, kind="stable")
    rank = np.full(n, np.iinfo(np.int64).max)  # 0 = most probable
    if inside.any():
        rank[inside] = np.argmax(order[inside] == true_index[inside, None], axis=1)
    top_k_accuracy = [float(np.mean(rank < k)) if n else math.nan for k in range(1, k_max + 1)]

    per_spacegroup: dict[int, dict] = {}
    for sg in np.unique(labels):
        mask = labels == sg
        correct = int(np.count_nonzero(rank[mask] == 0))
        per_spacegroup[int(sg)] = {"count": int(mask.sum()), "correct": correct, "recall": correct / int(mask.sum())}

    confusion = np.zeros((len(SYSTEM_NAMES), len(SYSTEM_NAMES)), dtype=np.int64)
    predicted = np.asarray(spacegroups)[order[:, 0]] if n else np.zeros(0, dtype=np.int64)
    for true_sg, predicted_sg in zip(labels, predicted):
        confusion[SYSTEM_NAMES.index(crystal_system(true_sg)), SYSTEM_NAMES.index(crystal_system(predicted_sg))] += 1
    return Evaluation(name, n, top_k_accuracy, per_spacegroup, confusion, int(np.count_nonzero(~inside)))
