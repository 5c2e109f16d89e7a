"""Every tunable of the pipeline, once, as typed pydantic models.

Why pydantic: a config is validated when a run starts (a wrong value fails in the first second with
one line naming the field, not an hour later inside a Ray actor), it serialises to YAML/JSON for
provenance, and it is printed at the start of every run so that a run is reproducible from its
printed config and seed alone.

Defaults follow the original work (Schopmans et al., ML4pXRDs) unless a description says otherwise.

One module per job: `pattern` (grid, simulation, augmentation), `crystals` (collection, statistics,
generation), `training` (training, cluster), `experiment` (experiment, evaluation, ablation) hold
the sections; `presets` the training and pattern presets and the ablation's effect groups; `constants` the anode
wavelengths; `root` the whole `Config`; `loading` YAML files and `--set` overrides. Import from
here: `from xrdgen.config import Config, load_config`.
"""

from xrdgen.config.constants import ANODE_KALPHA2, ANODE_WAVELENGTHS, WAVELENGTH_RANGE
from xrdgen.config.crystals import CollectionConfig, GenerationConfig, StatisticsConfig
from xrdgen.config.experiment import AblationConfig, EvaluationConfig, ExperimentConfig
from xrdgen.config.loading import config_from_dict, load_config, parse_overrides
from xrdgen.config.pattern import IMPERFECTIONS, SAMPLE_EFFECTS, AugmentationConfig, GridConfig, SimulationConfig
from xrdgen.config.presets import ABLATION_GROUPS, ABLATION_VARIANTS, PATTERN_PRESETS, TRAINING_PRESETS
from xrdgen.config.root import Config
from xrdgen.config.training import ClusterConfig, ModelName, TrainingConfig

__all__ = [
    "ABLATION_GROUPS",
    "ABLATION_VARIANTS",
    "ANODE_KALPHA2",
    "ANODE_WAVELENGTHS",
    "IMPERFECTIONS",
    "PATTERN_PRESETS",
    "SAMPLE_EFFECTS",
    "TRAINING_PRESETS",
    "WAVELENGTH_RANGE",
    "AblationConfig",
    "AugmentationConfig",
    "ClusterConfig",
    "CollectionConfig",
    "Config",
    "EvaluationConfig",
    "ExperimentConfig",
    "GenerationConfig",
    "GridConfig",
    "ModelName",
    "SimulationConfig",
    "StatisticsConfig",
    "TrainingConfig",
    "config_from_dict",
    "load_config",
    "parse_overrides",
]
