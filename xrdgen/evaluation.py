"""What a trained model says about labelled patterns: top-k accuracy, per-space-group recall, crystal systems.

A model run directory (area D's contract) holds `model.keras` (logits over the class list) and
`meta.json` (the class list `spacegroups`, the grid, the `sqrt_scale` flag, the model name and the
config). `load_model_run` reads it into a `TrainedModel` that knows how to turn a measured pattern
into model input (xrdgen.measured.preprocess) and logits into probabilities (softmax).

Reported as in the seed's evaluation (Schopf et al., S3 and Figures S7/S8):
- top-k accuracy for k = 1..10: the true space group is among the k most probable classes;
  a label outside the model's class list counts as a miss at every k (and is counted apart);
- per space group: recall (top-1) against the number of samples of that group;
- confusion by crystal system: true system (rows) against the top-1 prediction's system;
- the randomized test sets (S3): the same test crystals with coordinates, lattice or both re-drawn
  from the statistics, evaluated beside the unmodified set, showing how much the model leans on
  the exact structure rather than on what the synthetic generator can produce.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from xrdgen.config import ANODE_WAVELENGTHS, Config, GridConfig
from xrdgen.errors import UserError
from xrdgen.measured import ModelInput, MeasuredPattern, find_pattern_file, preprocess, read_pattern
from xrdgen.plotting import pyplot, save_figure
from xrdgen.statistics import CRYSTAL_SYSTEMS as SYSTEM_RANGES, crystal_system

CRYSTAL_SYSTEMS = tuple(name for name, _, _ in SYSTEM_RANGES)  # rows/columns of the confusion matrix
K_MAX = 10


def spacegroup_symbol(spacegroup: int) -> str:
    from pymatgen.symmetry.groups import sg_symbol_from_int_number

    return sg_symbol_from_int_number(int(spacegroup))


# ----------------------------------------------------------------------------------- the model


@dataclass
class TrainedModel:
    """A trained classifier and the facts needed to feed it: class list, grid, wavelength, scaling."""

    model: object  # keras.Model with logits output
    spacegroups: list[int]
    grid: GridConfig
    wavelength: float  # Å, the wavelength its training patterns were simulated at
    sqrt_scale: bool
    name: str
    meta: dict
    run_dir: Path

    def model_input(self, pattern: MeasuredPattern, wavelength: Optional[float] = None, fill: str = "edge") -> ModelInput:
        return preprocess(pattern, self.grid, self.wavelength, self.sqrt_scale, wavelength=wavelength, fill=fill)

    def probabilities(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Softmax over the class list for inputs of shape (n, n_points); float64 (n, n_classes)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.shape[1] != self.grid.n_points:
            raise UserError(f"{self.run_dir}: inputs have {x.shape[1]} points but the model's grid has {self.grid.n_points}")
        if len(self.model.input_shape) == 3:
            x = x[:, :, None]
        out = np.asarray(self.model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float64)
        if _ends_in_softmax(self.model):
            return out
        out = out - out.max(axis=1, keepdims=True)
        np.exp(out, out=out)
        return out / out.sum(axis=1, keepdims=True)


def _ends_in_softmax(model) -> bool:
    activation = getattr(model.layers[-1], "activation", None)
    return getattr(activation, "__name__", "") == "softmax"


def load_model_run(run_dir: Path | str) -> TrainedModel:
    """Read a run directory with area D's `load_trained` (model.keras, else its latest checkpoint)."""
    from xrdgen.training import load_trained

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such model run directory")
    model, meta = load_trained(run_dir)
    return _from_meta(model, meta, run_dir)


def _from_meta(model, meta: dict, run_dir: Path) -> TrainedModel:
    if "spacegroups" not in meta:
        raise UserError(f"{run_dir / 'meta.json'}: no 'spacegroups' class list")
    config = meta.get("config") or {}
    grid = meta.get("grid") or config.get("grid") or {}
    augmentation = config.get("augmentation") or {}
    sqrt_scale = bool(meta.get("sqrt_scale", augmentation.get("sqrt_scale", False)))
    wavelength = meta.get("wavelength")
    if wavelength is None:
        simulation = config.get("simulation") or {}
        wavelength = simulation.get("wavelength") or ANODE_WAVELENGTHS[simulation.get("anode") or "Cu"]
    try:
        grid_config = GridConfig(**{k: grid[k] for k in ("two_theta_min", "two_theta_max", "step") if k in grid})
    except Exception as exc:  # pydantic ValidationError: one line
        raise UserError(f"{run_dir / 'meta.json'}: bad grid ({exc.__class__.__name__})") from None
    name = meta.get("model") or meta.get("model_name") or (config.get("training") or {}).get("model", "unknown")
    trained = TrainedModel(model, [int(s) for s in meta["spacegroups"]], grid_config, float(wavelength), sqrt_scale, str(name), meta, run_dir)
    n_out = model.output_shape[-1]
    if n_out != len(trained.spacegroups):
        raise UserError(f"{run_dir}: the model has {n_out} outputs but meta.json lists {len(trained.spacegroups)} space groups")
    return trained


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


# ------------------------------------------------------------------------------------- metrics


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
            "crystal_systems": list(CRYSTAL_SYSTEMS),
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

    confusion = np.zeros((len(CRYSTAL_SYSTEMS), len(CRYSTAL_SYSTEMS)), dtype=np.int64)
    predicted = np.asarray(spacegroups)[order[:, 0]] if n else np.zeros(0, dtype=np.int64)
    for true_sg, predicted_sg in zip(labels, predicted):
        confusion[CRYSTAL_SYSTEMS.index(crystal_system(true_sg)), CRYSTAL_SYSTEMS.index(crystal_system(predicted_sg))] += 1
    return Evaluation(name, n, top_k_accuracy, per_spacegroup, confusion, int(np.count_nonzero(~inside)))


# --------------------------------------------------------------------------------------- plots


def plot_top_k(evaluations: Sequence[Evaluation], path: Path | str) -> Path:
    """Top-k accuracy against k for each evaluated set, one line each."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for ev in evaluations:
        ks = np.arange(1, len(ev.top_k_accuracy) + 1)
        ax.plot(ks, np.array(ev.top_k_accuracy) * 100, marker="o", label=f"{ev.name} (n={ev.n})")
    ax.set_xlabel("k")
    ax.set_ylabel("top-k accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_xticks(range(1, K_MAX + 1))
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def plot_recall_vs_samples(evaluation: Evaluation, path: Path | str) -> Path:
    """Per-space-group top-1 recall against its number of samples (seed Figs. S7/S8), by crystal system."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 1.6]})
    groups = sorted(evaluation.per_spacegroup)
    counts = np.array([evaluation.per_spacegroup[g]["count"] for g in groups])
    recalls = np.array([evaluation.per_spacegroup[g]["recall"] for g in groups]) * 100
    colours = plt.get_cmap("tab10")
    for i, system in enumerate(CRYSTAL_SYSTEMS):
        mask = np.array([crystal_system(g) == system for g in groups], dtype=bool)
        if mask.any():
            left.scatter(counts[mask], recalls[mask], s=18, color=colours(i), label=system)
            right.bar(np.array(groups)[mask], recalls[mask], width=1.0, color=colours(i))
    if counts.max() > 20:
        left.set_xscale("log")
    left.set_xlabel("samples of the space group")
    left.set_ylabel("recall (top-1, %)")
    left.set_ylim(-3, 103)
    left.legend(fontsize=7)
    right.set_xlabel("space group number")
    right.set_ylabel("recall (top-1, %)")
    right.set_xlim(0, 231)
    right.set_ylim(0, 100)
    fig.suptitle(f"{evaluation.name}: per-space-group recall")
    return save_figure(fig, path)


def plot_system_confusion(evaluation: Evaluation, path: Path | str) -> Path:
    """Crystal-system confusion, rows normalised to the true system's count, counts annotated."""
    plt = pyplot()
    counts = evaluation.system_confusion
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6, 5))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(CRYSTAL_SYSTEMS)):
        for j in range(len(CRYSTAL_SYSTEMS)):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(7), CRYSTAL_SYSTEMS, rotation=45, ha="right")
    ax.set_yticks(range(7), CRYSTAL_SYSTEMS)
    ax.set_xlabel("predicted (top-1)")
    ax.set_ylabel("true")
    fig.colorbar(image, ax=ax, label="share of the true system")
    ax.set_title(f"{evaluation.name}: crystal systems")
    return save_figure(fig, path)


def plot_model_input(model_input: ModelInput, pattern: MeasuredPattern, path: Path | str, title: str = "") -> Path:
    """The measured pattern as the model sees it (on its grid), the uncovered part shaded."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(model_input.two_theta, model_input.x, lw=0.7, color="k")
    lo, hi = model_input.covered_range
    for a, b in ((model_input.two_theta[0], lo), (hi, model_input.two_theta[-1])):
        if b > a:
            ax.axvspan(a, b, color="tab:red", alpha=0.12, lw=0)
    ax.set_xlim(model_input.two_theta[0], model_input.two_theta[-1])
    ax.set_xlabel(f"2θ (°) at λ = {model_input.wavelength:.5g} Å → model grid")
    ax.set_ylabel("model input")
    ax.set_title(title or f"{'/'.join(Path(pattern.source).parts[-2:])}: covered {model_input.covered_fraction:.0%} of the grid (shaded: filled)", fontsize=9)
    return save_figure(fig, path)


# ------------------------------------------------------------------------------------ datasets


@dataclass
class LabelledSet:
    """Model inputs with their true space groups, and what could not be used (name, reason)."""

    name: str
    names: list[str]
    x: np.ndarray  # float32 (n, n_points)
    labels: np.ndarray  # int64 (n,)
    details: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)


def spacegroup_of_cif(path: Path, symprec: float) -> int:
    """The label of a structure file: spglib (through pymatgen) at `symprec`."""
    from pymatgen.core import Structure
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            structure = Structure.from_file(path)
        except Exception as exc:  # pymatgen raises many types for bad CIFs
            raise UserError(f"{path}: cannot read the structure ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    return int(SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number())


def load_measured_set(directory: Path, trained: TrainedModel, wavelength: Optional[float] = None, symprec: float = 0.1, fill: str = "edge") -> LabelledSet:
    """A directory of folders, each with one pattern file and a structure CIF (like lab17)."""
    from tqdm import tqdm

    folders = sorted(p for p in Path(directory).iterdir() if p.is_dir())
    if not folders:
        raise UserError(f"{directory}: no sample folders (expected one folder per sample with a pattern and a structure.cif)")
    names, xs, labels, details, skipped = [], [], [], [], []
    for folder in tqdm(folders, desc="measured patterns", unit="pattern", leave=False):
        try:
            pattern_file = find_pattern_file(folder)
            cifs = sorted(folder.glob("*.cif"))
            if pattern_file is None:
                raise UserError(f"{folder}: no pattern file (pattern.xy/.csv/.txt/.xrdml)")
            if not cifs:
                raise UserError(f"{folder}: no structure .cif for the label")
            label = spacegroup_of_cif(cifs[0], symprec)
            pattern = read_pattern(pattern_file)
            model_input = trained.model_input(pattern, wavelength=wavelength, fill=fill)
        except UserError as exc:
            skipped.append({"name": folder.name, "reason": str(exc)})
            continue
        names.append(folder.name)
        xs.append(model_input.x)
        labels.append(label)
        details.append({"name": folder.name, "file": str(pattern_file), "spacegroup": label, "covered_fraction": model_input.covered_fraction, "wavelength_source": model_input.wavelength_source})
    x = np.stack(xs) if xs else np.zeros((0, trained.grid.n_points), np.float32)
    return LabelledSet(Path(directory).name, names, x, np.asarray(labels, dtype=np.int64), details, skipped)


RANDOMIZATIONS = {"coordinates": dict(coordinates=True, lattice=False), "lattice": dict(coordinates=False, lattice=True), "both": dict(coordinates=True, lattice=True)}


def simulate_sets(
    dataset: Path,
    trained: TrainedModel,
    config: Config,
    seed: int,
    statistics=None,
    randomizations: Sequence[str] = (),
    max_structures: Optional[int] = None,
) -> list[LabelledSet]:
    """Structures (CIF directory or CSV with a `cif` column) simulated with area B's simulator.

    `dataset` may also be the test entries a statistics build saved (`.json`/`.json.gz`, area A),
    the structures held out by the structure-type split. Returns the unmodified set first, then
    one set per requested randomization (seed S3) of the same crystals, re-drawn with area C's
    `randomize` (`statistics` needed for lattices). Labels are spglib's, as the collection gives them.
    """
    from tqdm import tqdm

    from xrdgen.augmentation import scale_input

    from xrdgen.collection import load_entries, read_collection
    from xrdgen.simulation import PatternSimulator

    dataset = Path(dataset)
    if dataset.name.endswith((".json", ".json.gz")):  # the held-out test entries of a statistics build (area A)
        entries, skipped = load_entries(dataset), []
    else:
        report = read_collection(dataset, config)
        entries = list(report.entries)
        skipped = [{"name": str(s.source_id), "reason": str(s.reason)} for s in report.skipped]
    if max_structures is not None:
        entries = entries[:max_structures]
    if not entries:
        raise UserError(f"{dataset}: no usable structures")
    grid = trained.grid
    simulator = PatternSimulator(config.simulation, grid)
    variants: list[tuple[str, Optional[dict]]] = [("unmodified", None)]
    if randomizations:
        if statistics is None and any(RANDOMIZATIONS.get(m, {}).get("lattice") for m in randomizations):
            raise UserError("re-drawing lattices needs the statistics the model was trained from (--statistics FILE)")
        try:
            from xrdgen.generation import randomize
        except ImportError:
            raise UserError("randomized test sets need area C's xrdgen.generation.randomize, which is not installed yet") from None
        for mode in randomizations:
            if mode not in RANDOMIZATIONS:
                raise UserError(f"unknown randomization {mode!r}; choose from {', '.join(RANDOMIZATIONS)}")
            variants.append((f"randomized {mode}", RANDOMIZATIONS[mode]))

    out = []
    for variant_index, (name, how) in enumerate(variants):
        rng = np.random.default_rng([seed, variant_index])
        names, xs, labels, bad = [], [], [], list(skipped) if how is None else []
        for entry in tqdm(entries, desc=name, unit="crystal", leave=False):
            crystal = entry.crystal
            try:
                if how is not None:
                    crystal = randomize(crystal, statistics, rng, **how)
                pattern = simulator.simulate(crystal, rng)
            except Exception as exc:  # one bad crystal must not end the evaluation: count and report it
                bad.append({"name": str(entry.source_id), "reason": f"{type(exc).__name__}: {exc}"[:200]})
                continue
            pattern = scale_input(pattern, trained.sqrt_scale)
            names.append(str(entry.source_id))
            xs.append(pattern)
            labels.append(int(entry.spacegroup))
        x = np.stack(xs) if xs else np.zeros((0, grid.n_points), np.float32)
        out.append(LabelledSet(name, names, x, np.asarray(labels, dtype=np.int64), skipped=bad))
    return out


def write_report(evaluations: Sequence[Evaluation], out_dir: Path | str, extra: Optional[dict] = None) -> dict:
    """summary.json plus the three PNGs (top-k curve of all sets; recall and confusion of the first)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    first = evaluations[0]
    figures = {
        "top_k": str(plot_top_k(evaluations, out_dir / "top_k_accuracy.png")),
        "recall_vs_samples": str(plot_recall_vs_samples(first, out_dir / "recall_vs_samples.png")),
        "crystal_systems": str(plot_system_confusion(first, out_dir / "crystal_system_confusion.png")),
    }
    summary = {"sets": [ev.to_dict() for ev in evaluations], "figures": figures, **(extra or {})}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
