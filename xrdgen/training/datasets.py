"""Labelled sets of model inputs: simulated structures, their randomized variants, measured patterns.

One type, `LabelledSet`, holds every fixed set the project trains or evaluates on; one loop,
`simulate_set`, makes the simulated ones: simulate the pure pattern of each crystal with the
configured simulator, bring it to the model's input scaling (`InputSpec.scale`), label it with the
crystal's space group (spglib's, as the collection gives it). Its users:

- the baseline training set: `training.baseline_patterns_per_structure` patterns of each
  statistics-part structure of the class list, crystallite sizes drawn;
- the held-out test set: `training.test_patterns_per_structure` patterns per test structure with
  sizes drawn from `simulation.crystallite_size_nm`;
- the randomized test sets (the method's supplementary S3): the same test crystals with coordinates,
  lattice or both re-drawn from the statistics (`randomize`), evaluated beside the unmodified set,
  showing how much a model leans on the exact structure rather than on what the generator can make.

Measured sets (`load_measured_set`) come in two layouts: a folder of sample folders with one
pattern file and a structure CIF each (like lab17), the label being the space group the CIF states
(spglib's only where it states none, `xrdgen.measured.cif_label`);
or a flat folder of patterns beside RRUFF DIF files (like rruff_dev), the label being the number of
the DIF file's `SPACE GROUP:` symbol in any setting, the wavelength the DIF file's where the pattern
file states none (`xrdgen.measured.dif`). Either way every sample is read and scored or skipped
with a one-line reason; none is dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Optional

import numpy as np

from xrdgen.collection.entries import CollectionEntry, load_entries
from xrdgen.collection.reading import read_collection
from xrdgen.config import AugmentationConfig, Config, SimulationConfig
from xrdgen.crystal import Crystal
from xrdgen.errors import UserError
from xrdgen.generation.randomize import randomize
from xrdgen.measured.cif_label import structure_label
from xrdgen.measured.dif import dif_samples, is_dif_directory, read_labelled
from xrdgen.measured.preprocess import ModelInput
from xrdgen.measured.readers import find_pattern_file, read_pattern
from xrdgen.progress import progress_iter
from xrdgen.simulation.imperfections import augment, draw_sample_effects
from xrdgen.simulation.simulator import PatternSimulator
from xrdgen.training.rundir import InputSpec

NOT_A_CLASS = "not in class list"
RANDOMIZATIONS = {
    "coordinates": dict(coordinates=True, lattice=False),
    "lattice": dict(coordinates=False, lattice=True),
    "both": dict(coordinates=True, lattice=True),
}


@dataclass
class LabelledSet:
    """Model inputs with their true space groups, and what could not be used."""

    name: str
    x: np.ndarray  # float32 (n, n_points), in the model's input scaling
    spacegroups: np.ndarray  # int64 (n,), the true space group of each row
    names: list[str]  # the structure or sample behind each row
    skipped: list[dict] = field(default_factory=list)  # {"name", "reason"} of each unusable item
    details: list[dict] = field(
        default_factory=list
    )  # per row: measured file, coverage, wavelength source; or simulated crystallite size

    def __len__(self) -> int:
        return len(self.spacegroups)

    def class_indices(self, classes: Sequence[int]) -> np.ndarray:
        """The training labels: index of each row's space group in `classes` (int32)."""
        index_of = {int(sg): i for i, sg in enumerate(classes)}
        missing = sorted({int(sg) for sg in self.spacegroups} - set(index_of))
        if missing:
            raise ValueError(f"{self.name}: space groups {missing} are not in the class list")
        return np.array([index_of[int(sg)] for sg in self.spacegroups], dtype=np.int32)

    def restricted(self, classes: Sequence[int]) -> LabelledSet:
        """The rows whose space group is one of `classes` (skipped and details of the kept rows kept)."""
        keep = np.isin(self.spacegroups, np.asarray(classes, dtype=np.int64))
        details = [d for d, k in zip(self.details, keep) if k] if self.details else []
        names = [n for n, k in zip(self.names, keep) if k]
        return LabelledSet(self.name, self.x[keep], self.spacegroups[keep], names, list(self.skipped), details)

    def skipped_summary(self) -> dict[str, int]:
        """How many items were skipped per reason (the exception type, or 'not in class list')."""
        return dict(Counter(s["reason"].split(":")[0] for s in self.skipped))


def epoch_batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless shuffled passes over a fixed set (baseline mode), every batch full.

    A pass ends with the last full batch: the few patterns left over go to a later pass in another
    order, and the step stays the unit of the equal budget (a short batch would weigh its patterns
    more and would not split evenly across replicas).
    """
    rng = np.random.default_rng(seed)
    if len(y) < batch_size:
        raise ValueError(f"a fixed set of {len(y)} patterns cannot fill a batch of {batch_size}")
    while True:
        order = rng.permutation(len(y))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            index = order[start : start + batch_size]
            yield x[index], y[index]


# ----------------------------------------------------------------------------- simulated sets
def simulate_set(
    crystals: Sequence[Crystal],
    spec: InputSpec,
    simulation: SimulationConfig,
    seed: int | Sequence[int],
    *,
    name: str = "simulated",
    names: Optional[Sequence[str]] = None,
    classes: Optional[Sequence[int]] = None,
    crystallite_sizes_nm: Optional[Sequence[float]] = None,
    patterns_per_crystal: int = 1,
    transform: Optional[Callable[[Crystal, np.random.Generator], Crystal]] = None,
    augmentation: Optional[AugmentationConfig] = None,
    progress: bool = False,
) -> LabelledSet:
    """Patterns of `crystals` on `spec`'s grid, in its input scaling, labelled by space group.

    One pattern per entry of `crystallite_sizes_nm` (fixed sizes), else `patterns_per_crystal`
    patterns with sizes drawn from `simulation.crystallite_size_nm` (Gaussian profile); each row's
    size is in `details`. `augmentation` (the config's section, which the pattern preset fills)
    draws each pattern's sample effects and imperfections exactly as the training stream does; the
    impurity of a crystal's patterns is the last pure pattern of the crystal before it (another
    phase, as in the stream), and the first crystal's wait for the second's first pure pattern
    (each row's impurity is named in `details`; only a set of one crystal has none). None gives
    pure patterns.
    `transform(crystal, rng)` re-draws a crystal before simulation (randomized sets); the label stays
    the original's. A crystal outside `classes` (when given), or one the transform or the simulator
    rejects, is skipped and reported. Random draws come from numpy's generator seeded with `seed`.
    """
    simulator = PatternSimulator(simulation, spec.grid)
    rng = np.random.default_rng(seed)
    names = [str(n) for n in names] if names is not None else [str(i) for i in range(len(crystals))]
    allowed = None if classes is None else {int(sg) for sg in classes}
    sizes = list(crystallite_sizes_nm) if crystallite_sizes_nm is not None else [None] * patterns_per_crystal
    xs, labels, row_names, skipped, details = [], [], [], [], []
    previous = None  # (name, last pure pattern) of the crystal before: the impurity phase of this one's patterns
    waiting: list[tuple[int, np.ndarray]] = []  # (row, pure) of the first crystal, until a second one is simulated
    with_impurity = augmentation is not None and augmentation.impurity
    for crystal, crystal_name in progress_iter(zip(crystals, names), len(crystals), name, "crystals", enabled=progress):
        label = int(crystal.spacegroup)
        if allowed is not None and label not in allowed:
            skipped.append({"name": crystal_name, "reason": NOT_A_CLASS})
            continue
        try:
            drawn = transform(crystal, rng) if transform is not None else crystal
            # drawn here, as the simulator would draw it, so that each row records its size
            drawn_size = simulation.profile == "gaussian"
            row_sizes = [
                float(rng.uniform(*simulation.crystallite_size_nm)) if size is None and drawn_size else size for size in sizes
            ]
            patterns, pures = [], []
            for i, size in enumerate(row_sizes):
                if augmentation is None:
                    patterns.append(spec.scale(simulator.simulate(drawn, rng, crystallite_size_nm=size)))
                    continue
                effects = draw_sample_effects(augmentation, rng)
                row_sizes[i] = effects.crystallite_size_nm if effects.crystallite_size_nm is not None else size
                pures.append(simulator.simulate(drawn, rng, crystallite_size_nm=size, effects=effects))
                if not with_impurity or previous is not None:
                    impurity = previous[1] if with_impurity else None
                    patterns.append(augment(pures[-1], augmentation, rng, spec.grid, impurity=impurity))
        except Exception as exc:  # noqa: BLE001 - one odd crystal must not sink the set: count and report it
            skipped.append({"name": crystal_name, "reason": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        impurity_name = previous[0] if with_impurity and previous is not None else None
        if with_impurity and previous is None:
            waiting = [(len(xs) + i, pure) for i, pure in enumerate(pures)]
            patterns = [None] * len(pures)
        elif waiting:
            for row, pure in waiting:
                xs[row] = augment(pure, augmentation, rng, spec.grid, impurity=pures[0])
                details[row]["impurity"] = crystal_name
            waiting = []
        if pures:
            previous = (crystal_name, pures[-1])
        xs.extend(patterns)
        labels.extend([label] * len(patterns))
        row_names.extend([crystal_name] * len(patterns))
        details.extend({"crystallite_size_nm": size, "impurity": impurity_name} for size in row_sizes)
    for row, pure in waiting:  # a set of one crystal: no other phase to mix in
        xs[row] = augment(pure, augmentation, rng, spec.grid)
    x = np.asarray(xs, dtype=np.float32).reshape(-1, spec.n_points)
    return LabelledSet(name, x, np.asarray(labels, dtype=np.int64), row_names, skipped, details)


def read_structures(source: Path, config: Config) -> tuple[list[CollectionEntry], list[dict]]:
    """Labelled structures of an entries file (`.json`/`.json.gz`, as `xrdgen stats build` saves the
    held-out part) or of any collection (CIF folder, CSV with a `cif` column); plus what was skipped."""
    source = Path(source)
    if source.name.endswith((".json", ".json.gz")):
        return load_entries(source), []
    report = read_collection(source, config)
    return list(report.entries), [{"name": str(s.source_id), "reason": str(s.reason)} for s in report.skipped]


def simulate_sets(
    dataset: Path,
    spec: InputSpec,
    config: Config,
    seed: int,
    statistics=None,
    randomizations: Sequence[str] = (),
    max_structures: Optional[int] = None,
) -> list[LabelledSet]:
    """The structures of `dataset` simulated unmodified, then once per requested randomization.

    `config.simulation` is the simulator's physics, `spec` the model's grid and scaling;
    `statistics` (a `Statistics`) is needed to re-draw lattices. Read failures are reported with
    the unmodified set.
    """
    unknown = [mode for mode in randomizations if mode not in RANDOMIZATIONS]
    if unknown:
        raise UserError(f"unknown randomization {unknown[0]!r}; choose from {', '.join(RANDOMIZATIONS)}")
    if statistics is None and any(RANDOMIZATIONS[mode]["lattice"] for mode in randomizations):
        raise UserError("re-drawing lattices needs the statistics the model was trained from (--statistics FILE)")
    entries, read_skipped = read_structures(Path(dataset), config)
    if max_structures is not None:
        entries = entries[:max_structures]
    if not entries:
        raise UserError(f"{dataset}: no usable structures")
    crystals = [e.crystal for e in entries]  # labelled with spglib's space group
    names = [str(e.source_id) for e in entries]
    variants = [("unmodified", None)] + [
        (f"randomized {mode}", partial(_randomized, statistics=statistics, config=config, **RANDOMIZATIONS[mode]))
        for mode in randomizations
    ]
    sets = []
    for index, (name, transform) in enumerate(variants):
        sets.append(
            simulate_set(
                crystals,
                spec,
                config.simulation,
                [seed, index],
                name=name,
                names=names,
                transform=transform,
                augmentation=config.augmentation,
                progress=True,
            )
        )
    sets[0].skipped[:0] = read_skipped
    return sets


def _randomized(
    crystal: Crystal, rng: np.random.Generator, statistics, config: Config, coordinates: bool, lattice: bool
) -> Crystal:
    return randomize(crystal, statistics, rng, config.collection, config.generation, coordinates=coordinates, lattice=lattice)


# ------------------------------------------------------------------------------- measured sets
def load_measured_set(
    directory: Path, spec: InputSpec, symprec: float, wavelength: Optional[float] = None, fill: str = "edge"
) -> LabelledSet:
    """The measured patterns of `directory` (either layout, module docstring) as the model's inputs.

    Each pattern goes through `spec.model_input` (wavelength conversion, grid, scaling); `wavelength`
    overrides the files' own. A sample that cannot be used is skipped with its one-line reason.
    """
    directory = Path(directory)
    if is_dif_directory(directory):
        return _load_dif_set(directory, spec, wavelength, fill)
    folders = sorted(p for p in directory.iterdir() if p.is_dir())
    if not folders:
        raise UserError(
            f"{directory}: no sample folders (expected one folder per sample with a pattern and a structure.cif, or patterns beside RRUFF DIF files)"
        )
    rows, skipped = [], []
    for folder in progress_iter(folders, None, "measured patterns", "patterns"):
        try:
            pattern_file = find_pattern_file(folder)
            cifs = sorted(folder.glob("*.cif"))
            if pattern_file is None:
                raise UserError(f"{folder}: no pattern file (pattern.xy/.csv/.txt/.xrdml)")
            if not cifs:
                raise UserError(f"{folder}: no structure .cif for the label")
            label = structure_label(cifs[0], symprec)
            model_input = spec.model_input(read_pattern(pattern_file), wavelength=wavelength, fill=fill)
        except UserError as exc:
            skipped.append({"name": folder.name, "reason": str(exc)})
            continue
        detail = _detail(folder.name, pattern_file, label.spacegroup, model_input, label_source=label.source)
        rows.append((folder.name, model_input, label.spacegroup, detail))
    return _measured_set(directory, spec, rows, skipped)


def _load_dif_set(directory: Path, spec: InputSpec, wavelength: Optional[float], fill: str) -> LabelledSet:
    """Patterns labelled by the RRUFF DIF file of the same RRUFF id (`dif_samples`)."""
    samples, skipped = dif_samples(directory)
    rows = []
    for sample in progress_iter(samples, None, "measured patterns", "patterns"):
        try:
            model_input = spec.model_input(read_labelled(sample), wavelength=wavelength, fill=fill)
        except UserError as exc:
            skipped.append({"name": sample.name, "reason": str(exc)})
            continue
        source = f"{sample.label.path.name} (SPACE GROUP: {sample.label.symbol})"
        detail = _detail(
            sample.name,
            sample.pattern,
            sample.spacegroup,
            model_input,
            label_source=source,
            symbol=sample.label.symbol,
            mineral=sample.label.mineral,
        )
        rows.append((sample.name, model_input, sample.spacegroup, detail))
    return _measured_set(directory, spec, rows, skipped)


def _detail(name: str, path: Path, label: int, model_input: ModelInput, **extra) -> dict:
    return {
        "name": name,
        "file": str(path),
        "spacegroup": int(label),
        **extra,
        "covered_fraction": model_input.covered_fraction,
        "wavelength": model_input.wavelength,
        "wavelength_source": model_input.wavelength_source,
        "notes": list(model_input.notes),
    }


def _measured_set(directory: Path, spec: InputSpec, rows: list[tuple], skipped: list[dict]) -> LabelledSet:
    x = np.stack([r[1].x for r in rows]).astype(np.float32) if rows else np.zeros((0, spec.n_points), np.float32)
    labels = np.asarray([r[2] for r in rows], dtype=np.int64)
    return LabelledSet(directory.name, x, labels, [r[0] for r in rows], skipped, [r[3] for r in rows])
