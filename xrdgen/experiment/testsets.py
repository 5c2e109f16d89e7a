"""Which real structures the experiment evaluates (and arm B trains) on, and with which label.

Three rules, each the same for the test part and for arm B's statistics-part structures:

- Label (`label_of`): the collection's own space-group label where it carries one (a CSV column,
  or a CIF's stated number when the CIF is not a P1 export; `CollectionEntry.spacegroup_file`),
  otherwise spglib's at `collection.symprec` (`CollectionEntry.spacegroup`). Where both exist and
  disagree, the collection's wins and the disagreement is counted.
- Limits (`limit_violations`): the generator never makes a conventional cell above
  `generation.max_volume` (= `statistics.max_volume`) Å³ or with more than
  `generation.max_atoms_asymmetric_unit` atoms in the asymmetric unit, so a structure outside
  either is a class of crystal the synthetic arm cannot have seen. Such structures are left out of
  the test set, and the unfiltered set is evaluated beside it; the atoms of the asymmetric unit are
  counted as the statistics count them (`xrdgen.statistics.build.asymmetric_unit_atoms`).
- Randomized sets (the method's supplementary S3, `randomized_sets`): the reference set is each
  test crystal made ordered (majority species at occupancy 1) and labelled again by spglib
  (`ordered_reference`); every randomized set redraws coordinates, lattice or both *of that
  reference* (`randomize`), so reference minus randomized accuracy is the effect of the redraw.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from xrdgen.collection.entries import CollectionEntry
from xrdgen.config import Config
from xrdgen.crystal import Crystal
from xrdgen.generation.randomize import ordered_reference, randomize
from xrdgen.statistics.build import asymmetric_unit_size
from xrdgen.training.datasets import LabelledSet, simulate_set
from xrdgen.training.rundir import InputSpec

LABEL_FROM_COLLECTION = "collection"
LABEL_FROM_SPGLIB = "spglib"
TOO_LARGE = "conventional cell above max_volume"
TOO_MANY_ATOMS = "asymmetric unit above max_atoms_asymmetric_unit"
RANDOMIZATIONS = {
    "coordinates": dict(coordinates=True, lattice=False),
    "lattice": dict(coordinates=False, lattice=True),
    "both": dict(coordinates=True, lattice=True),
}
REFERENCE_SET = "reference"


def label_of(entry: CollectionEntry) -> tuple[int, str]:
    """(space group, where it comes from): the collection's label, else spglib's."""
    if entry.spacegroup_file is not None:
        return int(entry.spacegroup_file), LABEL_FROM_COLLECTION
    return int(entry.spacegroup), LABEL_FROM_SPGLIB


def limit_violations(entry: CollectionEntry, config: Config) -> list[str]:
    """The generator's limits this structure breaks (empty: the generator could make its like)."""
    broken = []
    if entry.crystal.volume > config.generation.max_volume:
        broken.append(TOO_LARGE)
    if asymmetric_unit_size(entry) > config.generation.max_atoms_asymmetric_unit:
        broken.append(TOO_MANY_ATOMS)
    return broken


@dataclass
class Selection:
    """Labelled crystals of one part of the collection in the class list, split into those within
    the generator's limits and those outside; with the counts behind each step."""

    within: list[Crystal] = field(default_factory=list)
    within_names: list[str] = field(default_factory=list)
    outside: list[Crystal] = field(default_factory=list)
    outside_names: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)


def select(entries: Sequence[CollectionEntry], classes: Sequence[int], config: Config) -> Selection:
    """Label every entry (`label_of`), keep the class list, then split off those outside the limits.

    Facts: entries, label sources, disagreements (collection label ≠ spglib's), not in the class
    list, in the class list, within the limits, outside them, and per broken limit (an entry
    breaking both counts under both).
    """
    allowed = {int(sg) for sg in classes}
    out = Selection()
    sources: Counter = Counter()
    broken: Counter = Counter()
    disagreements = not_in_classes = 0
    for entry in entries:
        label, source = label_of(entry)
        sources[source] += 1
        disagreements += entry.label_disagrees
        if label not in allowed:
            not_in_classes += 1
            continue
        crystal = dataclasses.replace(entry.crystal, spacegroup=label)
        violations = limit_violations(entry, config)
        broken.update(violations)
        crystals, names = (out.outside, out.outside_names) if violations else (out.within, out.within_names)
        crystals.append(crystal)
        names.append(str(entry.source_id))
    out.facts = {
        "entries": len(entries),
        "label_source": {LABEL_FROM_COLLECTION: sources[LABEL_FROM_COLLECTION], LABEL_FROM_SPGLIB: sources[LABEL_FROM_SPGLIB]},
        "label_disagreements": int(disagreements),
        "not_in_classes": not_in_classes,
        "in_classes": len(out.within) + len(out.outside),
        "within_limits": len(out.within),
        "outside_limits": len(out.outside),
        "outside_by_limit": {TOO_LARGE: broken[TOO_LARGE], TOO_MANY_ATOMS: broken[TOO_MANY_ATOMS]},
    }
    return out


def simulate(crystals: Sequence[Crystal], inputs: InputSpec, config: Config, seed, **how) -> LabelledSet:
    """Every fixed set of the experiment (test sets, arm B's set) in the run's pattern preset: the
    profile of `config.simulation` and the sample effects and imperfections of `config.augmentation`,
    which `config.preset` fills, as the synthetic stream has them."""
    return simulate_set(crystals, inputs, config.simulation, seed, augmentation=config.augmentation, **how)


def randomized_sets(
    crystals: Sequence[Crystal],
    names: Sequence[str],
    statistics,
    config: Config,
    inputs: InputSpec,
    seed: int,
    classes: Sequence[int],
    randomizations: Sequence[str],
    progress: bool = False,
) -> tuple[list[LabelledSet], dict]:
    """The reference set and one set per randomization, every one built from the references.

    A crystal spglib cannot label once ordered is skipped from all of them; the facts count those
    and the references whose label differs from the test label (ordering can raise the symmetry).
    """
    references, ref_names, skipped = [], [], []
    changed = 0
    for crystal, name in zip(crystals, names):
        try:
            reference = ordered_reference(crystal, config.collection)
        except ValueError as exc:
            skipped.append({"name": name, "reason": f"ValueError: {exc}"[:200]})
            continue
        references.append(reference)
        ref_names.append(name)
        changed += reference.spacegroup != crystal.spacegroup
    sets = [
        simulate(references, inputs, config, [seed, 0], name=REFERENCE_SET, names=ref_names, classes=classes, progress=progress)
    ]
    for index, mode in enumerate(randomizations, start=1):
        redraw = RANDOMIZATIONS[mode]

        def transform(crystal: Crystal, rng: np.random.Generator, redraw=redraw) -> Crystal:
            return randomize(crystal, statistics, rng, config.collection, config.generation, **redraw)

        sets.append(
            simulate(
                references,
                inputs,
                config,
                [seed, index],
                name=f"randomized {mode}",
                names=ref_names,
                classes=classes,
                transform=transform,
                progress=progress,
            )
        )
    for s in sets:
        s.skipped[:0] = skipped
    return sets, {"references": len(references), "reference_unlabelled": len(skipped), "reference_label_changed": int(changed)}
