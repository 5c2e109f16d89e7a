"""The whole configuration: every section, the pattern preset applied when it is made, and its printing."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import Field, model_validator

from xrdgen.config.base import _Section
from xrdgen.config.crystals import CollectionConfig, GenerationConfig, StatisticsConfig
from xrdgen.config.experiment import AblationConfig, EvaluationConfig, ExperimentConfig
from xrdgen.config.pattern import AugmentationConfig, GridConfig, SimulationConfig
from xrdgen.config.presets import PATTERN_PRESETS
from xrdgen.config.training import ClusterConfig, TrainingConfig

# Limits the generator takes from the statistics section (fields of the same name in both).
GENERATOR_LIMITS = ("max_volume", "max_atoms_asymmetric_unit")


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
    def _generator_limits_are_the_statistics(self):
        """generation.max_volume and generation.max_atoms_asymmetric_unit are the statistics' limits;
        an explicit different value is an error."""
        generation = self.generation
        for name in GENERATOR_LIMITS:
            limit = getattr(self.statistics, name)
            if name in generation.model_fields_set and getattr(generation, name) != limit:
                raise ValueError(
                    f"generation.{name}={getattr(generation, name)} differs from statistics.{name}={limit}; "
                    f"the generator uses the statistics' limit, set statistics.{name} only"
                )
            if getattr(generation, name) != limit:
                setattr(generation, name, limit)
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
