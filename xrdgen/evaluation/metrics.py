"""What a trained model says about labelled patterns: top-k accuracy, per-space-group recall, crystal systems.

Counted as in the method's evaluation (Schopmans et al., supplementary S3 and Figures S7/S8):
- top-k accuracy for k = 1..10: the share of patterns whose true space group is among the k most
  probable classes; a label outside the model's class list counts as a miss at every k (and is
  counted apart);
- per space group: recall (top-1) = correct / count of that group's patterns;
- confusion by crystal system: true system (rows) against the top-1 prediction's system; also the
  accuracy of the most probable system by summed probability, P(s) = Σ_{i in s} p_i (the answer
  `predict` falls back to for an uncertain space group).
Patterns whose label is outside the class list are listed by name (`outside_class_list`), and the
top-k accuracy among the others is reported beside the overall one, so that no pattern disappears
from the count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pymatgen.symmetry.groups import sg_symbol_from_int_number

from xrdgen.evaluation.intervals import RESAMPLES, group_bootstrap, interval
from xrdgen.geometry import CRYSTAL_SYSTEMS, crystal_system

SYSTEM_NAMES = tuple(name for name, _, _ in CRYSTAL_SYSTEMS)  # rows/columns of the confusion matrix
K_MAX = 10


def spacegroup_symbol(spacegroup: int) -> str:
    """Hermann-Mauguin symbol of a space-group number (pymatgen's table)."""
    return sg_symbol_from_int_number(int(spacegroup))


def system_probabilities(probabilities: np.ndarray, spacegroups: Sequence[int]) -> np.ndarray:
    """(n, 7) summed class probabilities per crystal system, P(s) = Σ_{i in s} p_i; columns in SYSTEM_NAMES order."""
    membership = np.zeros((len(spacegroups), len(SYSTEM_NAMES)))
    for i, sg in enumerate(spacegroups):
        membership[i, SYSTEM_NAMES.index(crystal_system(int(sg)))] = 1.0
    return np.asarray(probabilities, dtype=np.float64) @ membership


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
    top_k_accuracy_in_class_list: list[float] = field(default_factory=list)  # the same, over labels in the class list
    system_accuracy_summed: float = math.nan  # most probable crystal system by summed probability
    outside_class_list: list[dict] = field(default_factory=list)  # {"name", "spacegroup"} of each such pattern
    skipped: list[dict] = field(default_factory=list)
    calibration: dict = field(default_factory=dict)  # calibration_summary(...): ECE/NLL before and after T
    intervals: dict = field(default_factory=dict)  # {"top1"|"top5"|"crystal_system": (lo, hi)}: 95 %, bootstrap over groups
    groups: str = ""  # what the bootstrap resampled (intervals.py)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "n": self.n,
            "n_scored": self.n,
            "n_skipped": len(self.skipped),
            "top_k_accuracy": {str(k + 1): a for k, a in enumerate(self.top_k_accuracy)},
            "n_outside_class_list": self.n_outside_classes,
            "outside_class_list": self.outside_class_list,
            "top_k_accuracy_in_class_list": {str(k + 1): a for k, a in enumerate(self.top_k_accuracy_in_class_list)},
            "per_spacegroup": {str(sg): v for sg, v in sorted(self.per_spacegroup.items())},
            "crystal_systems": list(SYSTEM_NAMES),
            "crystal_system_confusion": self.system_confusion.tolist(),
            "crystal_system_accuracy": float(np.trace(self.system_confusion) / max(self.system_confusion.sum(), 1)),
            "crystal_system_accuracy_summed_probability": self.system_accuracy_summed,
            "calibration": self.calibration,
            "intervals_95": {k: list(v) for k, v in self.intervals.items()},
            "intervals_resample": self.groups,
            "skipped": self.skipped,
        }


def evaluate(
    probabilities: np.ndarray,
    labels: Sequence[int],
    spacegroups: Sequence[int],
    name: str = "test",
    k_max: int = K_MAX,
    names: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    groups_are: str = "patterns",
) -> Evaluation:
    """Top-k accuracy (k = 1..k_max), per-space-group recall and crystal-system confusion.

    `names` (one per pattern) name the patterns outside the class list in the report. `groups` (one
    per pattern, e.g. the mineral of a measured pattern) are the units of the bootstrap that gives the
    95 % intervals of top-1, top-5 and the crystal-system accuracy (xrdgen/evaluation/intervals.py);
    without them every pattern is its own unit.
    """
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
    in_list = [float(np.mean(rank[inside] < k)) if inside.any() else math.nan for k in range(1, k_max + 1)]
    names = list(names) if names is not None else [str(i) for i in range(n)]
    outside = [{"name": names[i], "spacegroup": int(labels[i])} for i in np.flatnonzero(~inside)]

    per_spacegroup: dict[int, dict] = {}
    for sg in np.unique(labels):
        mask = labels == sg
        correct = int(np.count_nonzero(rank[mask] == 0))
        per_spacegroup[int(sg)] = {"count": int(mask.sum()), "correct": correct, "recall": correct / int(mask.sum())}

    confusion = np.zeros((len(SYSTEM_NAMES), len(SYSTEM_NAMES)), dtype=np.int64)
    predicted = np.asarray(spacegroups)[order[:, 0]] if n else np.zeros(0, dtype=np.int64)
    for true_sg, predicted_sg in zip(labels, predicted):
        confusion[SYSTEM_NAMES.index(crystal_system(true_sg)), SYSTEM_NAMES.index(crystal_system(predicted_sg))] += 1
    summed = system_probabilities(probabilities, spacegroups).argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
    true_system = np.array([SYSTEM_NAMES.index(crystal_system(int(sg))) for sg in labels], dtype=np.int64)
    system_accuracy = float(np.mean(summed == true_system)) if n else math.nan
    evaluation = Evaluation(
        name, n, top_k_accuracy, per_spacegroup, confusion, int(np.count_nonzero(~inside)), in_list, system_accuracy, outside
    )
    if n:
        units = list(groups) if groups is not None else names
        correct = {"top1": rank < 1, "top5": rank < 5, "crystal_system": summed == true_system}
        evaluation.intervals = {k: interval(v) for k, v in group_bootstrap(correct, units, RESAMPLES).items()}
        evaluation.groups = f"{len(set(units))} {groups_are if groups is not None else 'patterns'}"
    return evaluation
