"""The experiment sections: the synthetic-vs-collection comparison, calibrated confidence, the effect ablation."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from xrdgen.config.base import _Section
from xrdgen.config.presets import ABLATION_VARIANTS


class ExperimentConfig(_Section):
    """The method's central comparison: synthetic stream (arm A) vs the collection's own
    structures (arm B), equal gradient steps, several training seeds; see xrdgen/experiment/."""

    collection: list[str] = Field(["../shared/data/mp40"], min_length=1, description="CSV files, CIF folders, or folders of CSVs")
    max_structures: Optional[int] = Field(
        None, gt=0, description="a seeded random subset of the records, one per id (collection.id_column) (quick runs)"
    )
    arms: list[Literal["synthetic", "structures", "synthetic_icsd"]] = Field(
        ["synthetic", "structures"],
        min_length=1,
        description="synthetic (A): the stream from the statistics part alone, as the method draws every statistic from "
        "one collection; structures (B): the statistics-part structures; synthetic_icsd (A'): the stream with the "
        "space-group prior and element statistics of experiment.metadata, on the same class list",
    )
    metadata: Optional[str] = Field(
        None,
        description="database metadata (the ICSD's) for the synthetic_icsd arm's space-group prior and element statistics; "
        "the class list and the other arms never use it",
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
    smoothing: int = Field(
        3, gt=0, description="the plateau rule and the gain over the last doubling read the running mean of this many evaluations"
    )
    bootstrap: int = Field(2000, ge=100, description="bootstrap resamples of the test set's prototype groups (95 % intervals)")
    min_gain_per_doubling: float = Field(
        0.01,
        ge=0.0,
        description="decision rule: refuted at this scale when B >= A and A's smoothed validation top-1 gained less than "
        "this over its last doubling of patterns (docs/results.md states the whole rule)",
    )
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
        if len(set(self.arms)) != len(self.arms):
            raise ValueError(f"experiment.arms={self.arms}: name each arm once")
        if ("synthetic_icsd" in self.arms) != (self.metadata is not None):
            raise ValueError(
                "experiment.metadata feeds the synthetic_icsd arm only: give both or neither "
                f"(arms {self.arms}, metadata {self.metadata})"
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
