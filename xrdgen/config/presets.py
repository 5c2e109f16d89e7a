"""Presets: the training presets of the original work, the pattern presets and the ablation's effect groups.

The effects themselves are the switches of `AugmentationConfig` (pattern.py); everything here is
read from them.
"""

from xrdgen.config.pattern import IMPERFECTIONS, SAMPLE_EFFECTS, ablation_group

# Presets of the original work (the method's training section): parkCNN 1,000 epochs, the ResNets
# 2,000; any field left None in TrainingConfig takes the preset's value.
TRAINING_PRESETS = {
    "park": dict(batch_size=870, learning_rate=1e-3, batches_per_epoch=150, lr_halving_epochs=None, epochs=1000),
    "resnet": dict(batch_size=145, learning_rate=1e-4, batches_per_epoch=900, lr_halving_epochs=500, epochs=2000),
}


# The ablation of the sample and instrument effects: the groups of `augmentation` switches that one
# variant turns on alone (each effect its own group, except those its field puts together).
# "none" has all of them off, "all" all of them on.
def _ablation_groups() -> dict[str, tuple[str, ...]]:
    groups: dict[str, list[str]] = {}
    for effect in SAMPLE_EFFECTS:
        groups.setdefault(ablation_group(effect), []).append(effect)
    return {group: tuple(effects) for group, effects in groups.items()}


ABLATION_GROUPS = _ablation_groups()
ABLATION_VARIANTS = ("none", *ABLATION_GROUPS, "all")

# The two pattern presets: the `simulation:` and `augmentation:` values that `preset:` sets,
# except where the config sets a field itself. `pure` is the classification of pure patterns (the
# method's S2/S3, the original's simulated ICSD patterns); `measured` the measured-data experiments
# (S4.2 and the sample and instrument effects), applied to the training stream, the baseline's
# training set and every simulated test set alike. xrdgen/simulation/imperfections.py has every formula and range.
# `measured` keeps all eight sample effects on: in the ablation on rruff_dev (README, docs/results/
# ablation_rruff.md) none of them was distinguishable from off, and with three times the budget all
# on led none on the crystal system (49.6 vs 40.7 %, p = 0.06); nothing argued for switching one off.
PATTERN_PRESETS = {
    "pure": {  # the sections' own defaults
        "simulation": {"profile": "gaussian", "crystallite_size_nm": (20.0, 100.0), "kalpha2": False},
        "augmentation": {name: False for name in IMPERFECTIONS + SAMPLE_EFFECTS},
    },
    "measured": {
        "simulation": {"profile": "pseudo_voigt", "kalpha2": True},
        "augmentation": {name: True for name in IMPERFECTIONS + SAMPLE_EFFECTS},
    },
}
