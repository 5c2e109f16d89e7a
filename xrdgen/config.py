"""Every tunable of the pipeline, once, as typed pydantic models.

Why pydantic: a config is validated when a run starts (a wrong value fails in the first second with
one line naming the field, not an hour later inside a Ray actor), it serialises to YAML/JSON for
provenance, and it is printed at the start of every run so that a run is reproducible from its
printed config and seed alone.

Defaults follow the original work (Schopmans et al., ML4pXRDs) unless a comment says otherwise.

Longer than 350 lines because every section is here, beside the loading and `--set` parsing: one
file to read for every tunable of the pipeline, and one place where each parameter is defined.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Literal, Optional, Union

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from xrdgen.errors import UserError

# Characteristic Kα1 wavelengths in Å (same values as pymatgen's WAVELENGTHS table).
ANODE_WAVELENGTHS = {
    "Cu": 1.54056,
    "Mo": 0.70930,
    "Cr": 2.28970,
    "Fe": 1.93604,
    "Co": 1.78897,
    "Ag": 0.55941,
}
# Kα2 wavelengths in Å, for the optional doublet.
ANODE_KALPHA2 = {
    "Cu": 1.54439,
    "Mo": 0.71359,
    "Cr": 2.29361,
    "Fe": 1.93998,
    "Co": 1.79285,
    "Ag": 0.56380,
}
# Wavelengths (Å) accepted anywhere (config, CLI options, measured-file headers): hard X-rays (In Kα
# 0.51, Ag Kα 0.56) to the softest laboratory anodes (Cr Kα 2.29), with room on both sides.
WAVELENGTH_RANGE = (0.05, 5.0)


class _Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are re-validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def _check_range(lo_hi: tuple[float, float], name: str) -> tuple[float, float]:
    lo, hi = lo_hi
    if lo > hi:
        raise ValueError(f"{name}: lower bound {lo} is above upper bound {hi}")
    return lo_hi


class GridConfig(_Section):
    """The 2θ grid every pattern lives on (default 5–90° at 0.01°, 8501 points)."""

    two_theta_min: float = Field(5.0, ge=0.0, lt=180.0)
    two_theta_max: float = Field(90.0, gt=0.0, le=180.0)
    step: float = Field(0.01, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self):
        if self.two_theta_min >= self.two_theta_max:
            raise ValueError("two_theta_min must be below two_theta_max")
        return self

    @property
    def n_points(self) -> int:
        return int(round((self.two_theta_max - self.two_theta_min) / self.step)) + 1

    def two_theta(self) -> np.ndarray:
        """The grid itself, float64, endpoints included."""
        return np.linspace(self.two_theta_min, self.two_theta_max, self.n_points)


class SimulationConfig(_Section):
    """Physics of the pure pattern: radiation, profile and peak broadening."""

    anode: Optional[Literal["Cu", "Mo", "Cr", "Fe", "Co", "Ag"]] = "Cu"
    wavelength: Optional[float] = Field(None, description="Å; overrides the anode's Kα1")
    kalpha2: bool = False
    kalpha2_ratio: float = Field(0.5, ge=0.0, le=1.0, description="I(Kα2)/I(Kα1)")
    profile: Literal["gaussian", "pseudo_voigt"] = "gaussian"
    crystallite_size_nm: tuple[float, float] = (20.0, 100.0)
    caglioti_u: tuple[float, float] = (0.0, 0.01)
    caglioti_w: tuple[float, float] = (0.0, 0.01)
    eta: tuple[float, float] = (0.0, 1.0)
    debye_waller: bool = False
    debye_waller_b: float = Field(1.0, ge=0.0, description="Å²; isotropic B of every element, only with debye_waller")
    scherrer_k: float = Field(0.9, gt=0.0)

    @model_validator(mode="after")
    def _ranges(self):
        lo, hi = WAVELENGTH_RANGE
        if self.wavelength is not None and not lo < self.wavelength < hi:
            raise ValueError(f"wavelength {self.wavelength:g} Å is outside {lo:g}–{hi:g} Å")
        _check_range(self.crystallite_size_nm, "crystallite_size_nm")
        if self.crystallite_size_nm[0] <= 0:
            raise ValueError("crystallite_size_nm must be positive")
        for name in ("caglioti_u", "caglioti_w", "eta"):
            _check_range(getattr(self, name), name)
        if self.anode is None and self.wavelength is None:
            raise ValueError("give an anode or a wavelength")
        if self.kalpha2 and self.anode is None:
            raise ValueError("kalpha2 needs an anode (its Kα2 wavelength)")
        return self

    @property
    def wavelength_kalpha1(self) -> float:
        return self.wavelength if self.wavelength is not None else ANODE_WAVELENGTHS[self.anode]

    @property
    def wavelength_kalpha2(self) -> Optional[float]:
        return ANODE_KALPHA2[self.anode] if self.kalpha2 and self.anode else None


class AugmentationConfig(_Section):
    """Experimental imperfections added to a pure pattern (background, noise, impurity); each one switchable."""

    background: bool = True
    background_length_scale: tuple[float, float] = (7.0, 40.0)
    background_scale_sd: float = Field(75.0, ge=0.0)
    background_scale_max: float = Field(150.0, ge=0.0)
    additive_noise: bool = True
    additive_noise_sd_max: float = Field(0.02, ge=0.0)
    multiplicative_noise: bool = True
    multiplicative_noise_sd_max: float = Field(0.16, ge=0.0)
    impurity: bool = True
    impurity_fraction_max: float = Field(0.05, ge=0.0, le=1.0)
    sqrt_scale: bool = False
    # Sample and instrument effects beyond the method (issue 14), applied while the pattern is
    # simulated; formulas and literature ranges in xrdgen/simulation/imperfections.py.
    preferred_orientation: bool = False
    march_dollase_r: tuple[float, float] = Field((0.7, 1.0), description="March–Dollase r (1 = random powder)")
    zero_shift: bool = False
    zero_shift_max_deg: float = Field(0.1, ge=0.0, description="2θ zero error drawn from U[-max, max]")
    sample_displacement: bool = False
    sample_displacement_max_mm: float = Field(0.2, ge=0.0, description="height error s drawn from U[-max, max]")
    goniometer_radius_mm: float = Field(240.0, gt=0.0)
    lattice_strain: bool = False
    lattice_strain_max: float = Field(0.04, ge=0.0, lt=0.5, description="relative change of each free lattice parameter")
    microstrain: bool = False
    microstrain_max: float = Field(0.005, ge=0.0, description="ε of the 4ε·tanθ broadening, drawn from U[0, max]")
    axial_asymmetry: bool = False
    axial_asymmetry_max: float = Field(0.05, ge=0.0, le=1.0, description="A of the split widths Γ(1 ± A·cot 2θ)")
    debye_waller: bool = False
    debye_waller_b: tuple[float, float] = Field((0.3, 1.5), description="Å², isotropic B drawn per pattern")
    small_crystallites: bool = False
    crystallite_size_nm: tuple[float, float] = Field((3.0, 100.0), description="Scherrer size drawn per pattern")

    @model_validator(mode="after")
    def _ranges(self):
        _check_range(self.background_length_scale, "background_length_scale")
        for name in ("march_dollase_r", "crystallite_size_nm"):
            if _check_range(getattr(self, name), name)[0] <= 0:
                raise ValueError(f"{name}: values must be positive")
        if _check_range(self.debye_waller_b, "debye_waller_b")[0] < 0:
            raise ValueError("debye_waller_b: values must be non-negative")
        return self


class CollectionConfig(_Section):
    """Sanity limits when reading a crystal collection: entries outside are skipped and reported."""

    max_atoms: int = Field(1000, gt=0, description="atoms in the conventional cell")
    min_volume_per_atom: float = Field(1.0, gt=0.0, description="Å³; denser than this is absurd")
    max_volume_per_atom: float = Field(300.0, gt=0.0)
    symprec: float = Field(0.1, gt=0.0, description="spglib tolerance for the label we compute")
    chunk_size: int = Field(64, gt=0, description="CIFs per Ray task")
    id_column: Optional[str] = Field(
        None, description="deduplicate by this id (CSV column; a CIF file's name): the first record of each id is read"
    )


class StatisticsConfig(_Section):
    """Structure-type split and the per-space-group statistics (space-group prior, Wyckoff occupation, lattice and volume KDEs).

    `max_volume` is also the generator's limit (`GenerationConfig.max_volume` follows it): generated
    cells above it are rejected, so the generator never leaves the range the statistics describe.
    """

    test_fraction: float = Field(0.3, gt=0.0, lt=1.0)
    min_count_per_spacegroup: int = Field(50, ge=1, description="original: 50 on the ICSD -> 145 classes")
    prototype_grouping: Literal["auto", "structure_type", "prototype"] = "auto"
    max_volume: float = Field(
        7000.0, gt=0.0, description="Å³, conventional cell; larger ones stay out of the statistics (original)"
    )
    max_wyckoff_sites: int = Field(100, gt=0, description="occupied Wyckoff sites (asymmetric unit); more stay out (original)")
    min_structures_per_class: int = Field(
        10,
        ge=1,
        description="ordered statistics-part structures a class needs for its own Wyckoff statistics (capped at min_count_per_spacegroup without metadata)",
    )
    min_structures_volume_kde: int = Field(
        20,
        ge=2,
        description="structures a space group needs for its own volume KDE; fewer: the pooled one (20: own beats pooled in held-out likelihood on mp26k from here on)",
    )


class GenerationConfig(_Section):
    """Synthetic crystal generation (space group, Wyckoff occupation, coordinates, lattice and volume draws, retry rule).

    `max_volume` is not set here: inside a `Config` it is `statistics.max_volume` (one source of
    truth); a standalone section (tests, tools) may set it directly.
    """

    max_atoms_asymmetric_unit: int = Field(100, gt=0)
    max_volume: float = Field(7000.0, gt=0.0, description="Å³, conventional cell; in a Config: statistics.max_volume")
    tries_per_n_elements: int = Field(20, gt=0)
    max_collisions: int = Field(
        50,
        ge=0,
        description="Wyckoff occupation: redraws of an occupied site without freedom before the element's other sites are dropped (original: 50)",
    )
    min_density_volume_per_atom: float = Field(0.75, ge=0.0)
    symprec: float = Field(1e-8, gt=0.0, description="spglib check, as the original")
    angle_tolerance: float = Field(5.0, ge=-1.0)
    distance_check: bool = False
    min_distance: float = Field(0.8, gt=0.0, description="Å, only with distance_check")
    path: Literal["fast", "reference"] = "fast"
    check: Literal["fast", "spglib"] = Field(
        "fast",
        description="fast path's space-group check: our exact search for operations beyond the drawn group (spglib only "
        "where needed; same verdicts as spglib, benchmarks/bench_symmetry_check.py) or spglib on every draw",
    )
    max_attempts_per_crystal: int = Field(
        10_000, gt=0, description="give up (RuntimeError) when statistics and limits admit no crystal"
    )


ModelName = Literal["park_medium", "park_big", "resnet10", "resnet50", "resnet101"]

# Presets of the original work (the method's training section): parkCNN 1,000 epochs, the ResNets
# 2,000; any field left None in TrainingConfig takes the preset's value.
TRAINING_PRESETS = {
    "park": dict(batch_size=870, learning_rate=1e-3, batches_per_epoch=150, lr_halving_epochs=None, epochs=1000),
    "resnet": dict(batch_size=145, learning_rate=1e-4, batches_per_epoch=900, lr_halving_epochs=500, epochs=2000),
}


class TrainingConfig(_Section):
    """Model and optimiser. None means: the preset of the chosen architecture."""

    model: ModelName = "park_medium"
    batch_size: Optional[int] = Field(None, gt=0)
    learning_rate: Optional[float] = Field(None, gt=0.0)
    batches_per_epoch: Optional[int] = Field(None, gt=0)
    lr_halving_epochs: Optional[int] = Field(None, gt=0)
    epochs: Optional[int] = Field(None, gt=0)
    max_minutes: Optional[float] = Field(None, gt=0.0, description="stop after this wall time")
    dropout: bool = False
    baseline: bool = False
    baseline_patterns_per_structure: int = Field(
        2,
        gt=0,
        description="baseline: patterns per structure, each with its own crystallite size from simulation.crystallite_size_nm",
    )
    test_patterns_per_structure: int = Field(1, gt=0)
    output_dir: Path = Path("runs/latest")
    init_from: Optional[Path] = Field(
        None,
        description="a run directory whose model starts a new run (same model, class list and grid): e.g. a pure-preset "
        "model fine-tuned in the measured preset, which from scratch stays at the prior for thousands of steps; "
        "ignored when the run resumes from its own checkpoint",
    )

    def resolved(self) -> TrainingConfig:
        """A copy with every None filled from the architecture's preset."""
        preset = TRAINING_PRESETS["park" if self.model.startswith("park") else "resnet"]
        values = self.model_dump()
        for key, value in preset.items():
            if values.get(key) is None:
                values[key] = value
        return TrainingConfig(**values)


class ClusterConfig(_Section):
    """Ray services: how many actors, how much each asks for, how deep the queue is."""

    address: Optional[str] = Field(None, description="Ray address; None starts or joins a local one")
    n_generators: Union[int, Literal["auto"]] = Field(
        2, description='"auto": the cluster\'s CPUs minus trainer_cpus, per cpus_per_generator; follows the autoscaler'
    )
    cpus_per_generator: float = Field(1.0, gt=0.0)
    generator_batch_size: int = Field(
        256,
        gt=0,
        description="patterns per queue item; each item costs a fixed transfer: 256 keeps Ray's overhead near 8 %, 64 at 13 % (bench_pipeline.py)",
    )
    queue_max_items: int = Field(8, gt=0, description="items the queue holds: 8 x 256 patterns of 8501 points = 70 MB")
    trainer_gpus: float = Field(0.0, ge=0.0)
    trainer_cpus: float = Field(1.0, ge=0.0)
    max_restarts: int = Field(-1, ge=-1)
    prefetch_batches: int = Field(4, ge=0)

    @field_validator("n_generators", mode="before")
    @classmethod
    def _positive_or_auto(cls, value):
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            return value
        raise ValueError(f"expected a positive integer or auto, got {value!r}")


class ExperimentConfig(_Section):
    """The method's central comparison (issue 8): synthetic stream (arm A) vs the collection's own
    structures (arm B), equal gradient steps, several training seeds; see xrdgen/experiment/."""

    collection: list[str] = Field(["../shared/data/mp40"], min_length=1, description="CSV files, CIF folders, or folders of CSVs")
    max_structures: Optional[int] = Field(
        None, gt=0, description="a seeded random subset of the records, one per id (collection.id_column) (quick runs)"
    )
    metadata: Optional[str] = Field(
        None, description="database metadata (the ICSD's) for the space-group prior, element statistics and class list"
    )
    entries_cache: Optional[str] = Field(
        None,
        description="entries cache of `xrdgen stats build --entries-cache` (the read and its grouping); not with max_structures",
    )
    split_seed: int = Field(0, description="structure-type split; fixed across training seeds")
    seeds: list[int] = Field([0, 1, 2], min_length=1, description="training seeds (network init, stream, batch order)")
    steps: int = Field(600, gt=0, description="gradient steps per arm and seed (the equal budget)")
    eval_every: int = Field(50, gt=0, description="steps between held-out evaluations (learning curves)")
    validation_fraction: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="share of the test part's structure types set aside for the learning curves and the plateau rule; 0: curves on the test set",
    )
    max_steps: Optional[int] = Field(
        None,
        gt=0,
        description="structure-type split: after the equal budget, go on until the validation top-1 stops improving, at most this many steps (the random-split control stays at the equal budget)",
    )
    patience: int = Field(3, gt=0, description="evaluations without a better validation top-1 that end the run (with max_steps)")
    randomizations: list[Literal["coordinates", "lattice", "both"]] = ["coordinates", "lattice", "both"]
    splits: list[Literal["structure_type", "random"]] = Field(
        ["structure_type", "random"],
        min_length=1,
        description="structure_type: the method's split (unseen structure types); random: the 70/30 control of the original's Table S2",
    )
    measured: Optional[str] = Field(
        "../shared/data/lab17", description="folders of measured patterns + structure.cif; None skips"
    )

    @model_validator(mode="after")
    def _whole_evaluations(self):
        if self.steps % self.eval_every:
            raise ValueError(f"experiment.steps={self.steps} must be a multiple of experiment.eval_every={self.eval_every}")
        if len(set(self.splits)) != len(self.splits):
            raise ValueError(f"experiment.splits={self.splits}: name each split once")
        if self.max_steps is not None:
            if self.max_steps <= self.steps or self.max_steps % self.eval_every:
                raise ValueError(
                    f"experiment.max_steps={self.max_steps} must exceed experiment.steps={self.steps} and be a multiple of eval_every"
                )
            if self.validation_fraction == 0:
                raise ValueError(
                    "experiment.max_steps needs experiment.validation_fraction > 0: the plateau is judged on validation data, never on the test set"
                )
        if self.entries_cache is not None and self.max_structures is not None:
            raise ValueError("experiment.entries_cache reads the whole collection; it cannot go with experiment.max_structures")
        return self


class EvaluationConfig(_Section):
    """Calibrated confidence: temperature scaling fitted after training (xrdgen/evaluation/calibration.py)."""

    confidence_threshold: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="top-1 calibrated probability below which predict marks a prediction uncertain and reports the crystal system",
    )
    calibration_patterns: int = Field(1000, gt=0, description="held-out synthetic stream patterns the temperature is fitted on")


# The ablation of the sample and instrument effects (issue 14): the groups of `augmentation` flags that
# one variant switches on alone. "none" has all of them off, "all" all of them on.
ABLATION_GROUPS = {
    "preferred_orientation": ("preferred_orientation",),
    "peak_shift": ("zero_shift", "sample_displacement"),
    "lattice_strain": ("lattice_strain",),
    "microstrain": ("microstrain",),
    "axial_asymmetry": ("axial_asymmetry",),
    "debye_waller": ("debye_waller",),
    "small_crystallites": ("small_crystallites",),
}
ABLATION_VARIANTS = ("none", *ABLATION_GROUPS, "all")


class AblationConfig(_Section):
    """Which sample/instrument effects help on measured patterns: one model per effect group, equal
    budget, scored on a labelled measured folder (xrdgen/experiment/ablation.py)."""

    measured: str = Field(
        "../shared/data/rruff_dev", description="labelled measured patterns (RRUFF DIF layout or sample folders)"
    )
    statistics: str = Field("default", description='statistics file the stream draws from; "default": the shipped one')
    steps: int = Field(600, gt=0, description="gradient steps per variant (the equal budget)")
    eval_every: int = Field(50, gt=0, description="steps between checkpoints and measured-set learning-curve points")
    log_every_s: float = Field(60.0, gt=0.0, description="seconds between progress lines while a variant trains")
    variants: list[str] = Field(list(ABLATION_VARIANTS), min_length=1, description="variants to train; 'none' is the reference")
    pure_start_steps: int = Field(
        0,
        ge=0,
        description="steps of one shared model on pure patterns that every variant starts from (0: each from scratch); "
        "from scratch, the measured preset's patterns taught parkCNN nothing beyond the prior in 1,000 steps",
    )

    @field_validator("variants")
    @classmethod
    def _known_variants(cls, variants):
        unknown = [v for v in variants if v not in ABLATION_VARIANTS]
        if unknown:
            raise ValueError(f"unknown variant {unknown[0]!r}; choose from {', '.join(ABLATION_VARIANTS)}")
        if len(set(variants)) != len(variants):
            raise ValueError(f"{variants}: name each variant once")
        if "none" not in variants:
            raise ValueError("include 'none', the reference of every comparison")
        return variants

    @model_validator(mode="after")
    def _whole_evaluations(self):
        for name in ("steps", "pure_start_steps"):
            if getattr(self, name) % self.eval_every:
                raise ValueError(
                    f"ablation.{name}={getattr(self, name)} must be a multiple of ablation.eval_every={self.eval_every}"
                )
        return self


# The two pattern presets (issue 12): the `simulation:` and `augmentation:` values that `preset:` sets,
# except where the config sets a field itself. `pure` is the classification of pure patterns (the
# method's S2/S3, the original's simulated ICSD patterns); `measured` the measured-data experiments
# (S4.2 and the effects of issue 14), applied to the training stream, the baseline's training set and
# every simulated test set alike. xrdgen/simulation/imperfections.py has every formula and range.
# `measured` keeps all eight sample effects on: in the ablation on rruff_dev (README, docs/results/
# ablation_rruff.md) none of them was distinguishable from off, and with three times the budget all
# on led none on the crystal system (49.6 vs 40.7 %, p = 0.06); nothing argued for switching one off.
_IMPERFECTIONS = ("background", "additive_noise", "multiplicative_noise", "impurity")
_SAMPLE_EFFECTS = (
    "preferred_orientation",
    "zero_shift",
    "sample_displacement",
    "lattice_strain",
    "microstrain",
    "axial_asymmetry",
    "debye_waller",
    "small_crystallites",
)
PATTERN_PRESETS = {
    "pure": {
        "simulation": {"profile": "gaussian", "crystallite_size_nm": (20.0, 100.0), "kalpha2": False},
        "augmentation": {name: False for name in _IMPERFECTIONS + _SAMPLE_EFFECTS},
    },
    "measured": {
        "simulation": {"profile": "pseudo_voigt", "kalpha2": True},
        "augmentation": {name: True for name in _IMPERFECTIONS + _SAMPLE_EFFECTS},
    },
}


class Config(_Section):
    """The whole pipeline. `seed` makes every run reproducible together with this config."""

    preset: Literal["pure", "measured"] = Field(
        "pure",
        frozen=True,
        description="pattern preset, applied when the config is made: fills the simulation/augmentation fields it does not set",
    )
    seed: int = 0
    grid: GridConfig = GridConfig()
    simulation: SimulationConfig = SimulationConfig()
    augmentation: AugmentationConfig = AugmentationConfig()
    collection: CollectionConfig = CollectionConfig()
    statistics: StatisticsConfig = StatisticsConfig()
    generation: GenerationConfig = GenerationConfig()
    training: TrainingConfig = TrainingConfig()
    cluster: ClusterConfig = ClusterConfig()
    experiment: ExperimentConfig = ExperimentConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    ablation: AblationConfig = AblationConfig()

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data):
        """`preset` fills the simulation and augmentation fields that the given mapping leaves unset; a
        section given as an object (Python callers, assignment) is taken whole."""
        if not isinstance(data, dict) or data.get("preset", "pure") not in PATTERN_PRESETS:
            return data  # not a mapping, or an unknown preset: field validation names the problem
        data = dict(data)
        for section, values in PATTERN_PRESETS[data.get("preset", "pure")].items():
            given = data.get(section)
            if given is None or isinstance(given, dict):
                data[section] = {**values, **(given or {})}
        return data

    @model_validator(mode="after")
    def _one_max_volume(self):
        """generation.max_volume is statistics.max_volume; an explicit different value is an error."""
        generation, limit = self.generation, self.statistics.max_volume
        if "max_volume" in generation.model_fields_set and generation.max_volume != limit:
            raise ValueError(
                f"generation.max_volume={generation.max_volume} differs from statistics.max_volume={limit}; "
                "the generator uses the statistics' limit, set statistics.max_volume only"
            )
        if generation.max_volume != limit:
            generation.max_volume = limit
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def describe(self) -> str:
        """The whole configuration as commented YAML."""
        return "# xrdgen configuration\n" + self.to_yaml()

    def changes(self) -> dict:
        """{dotted field: value} of every field whose value differs from the default configuration."""
        mine, default = _flatten(self.model_dump(mode="json")), _flatten(Config().model_dump(mode="json"))
        return {key: value for key, value in mine.items() if key not in default or default[key] != value}

    def describe_changes(self, full_config: Optional[Path] = None) -> str:
        """What a run prints at its start: the values that differ from the defaults, and where the
        full configuration was written (a run is reproducible from that file and its seed)."""
        where = f"; full config: {full_config}" if full_config is not None else ""
        lines = [f"config: differences from the defaults{where}"]
        lines += [f"  {key} = {value}" for key, value in self.changes().items()] or ["  (none)"]
        return "\n".join(lines)


def _flatten(data: dict, prefix: str = "") -> dict:
    """Nested sections to {"section.field": value}; lists stay values."""
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _format_validation_error(source: str, error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = len(error.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{source}: {where}: {first['msg']}{suffix}"


def parse_overrides(pairs: Optional[list[str]]) -> dict:
    """`a.b=value` strings (`--set` options) to a dict; values are parsed as YAML scalars (3, 0.1, true, [1, 2])."""
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise UserError(f"--set {pair}: expected KEY=VALUE, e.g. training.epochs=3")
        key, value = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def load_config(path: Optional[Path | str] = None, overrides: Optional[dict] = None) -> Config:
    """Read a YAML config (or the defaults), apply dotted overrides, validate; one-line errors."""
    data: dict = {}
    source = "default config"
    if path is not None:
        source = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise UserError(f"{source}: no such config file") from None
        except yaml.YAMLError as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", None)
            at = f" at line {line + 1}" if line is not None else ""
            raise UserError(f"{source}: not valid YAML{at}") from None
        if not isinstance(data, dict):
            raise UserError(f"{source}: expected a mapping of config sections at the top level")
    return config_from_dict(data, overrides, source)


def config_from_dict(data: dict, overrides: Optional[dict] = None, source: str = "config") -> Config:
    """A config from nested sections (a YAML file's, or a run's meta.json copy) with dotted
    `overrides` applied, validated; an invalid value is one line naming `source` and the field."""
    data = copy.deepcopy(data)
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    try:
        return Config(**data)
    except ValidationError as exc:
        raise UserError(_format_validation_error(source, exc)) from None
