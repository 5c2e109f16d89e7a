"""Reading a config: YAML files, `--set` overrides, a stored run's copy; every problem as one line."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional

import yaml
from pydantic import ValidationError

from xrdgen.config.root import GENERATOR_LIMITS, Config
from xrdgen.errors import UserError

# Fields that older configs (a run's meta.json, a YAML file written before) name differently. A
# renamed field is read under its new name. A removed field is dropped where it had no effect (its
# switch off, as in every stored config so far) and otherwise refused with what to write instead.
RENAMED_FIELDS = {
    "statistics.max_wyckoff_sites": "statistics.max_atoms_asymmetric_unit",  # one limit with the generator's
    "augmentation.crystallite_size_nm": "augmentation.small_crystallite_size_nm",  # apart from simulation's
}
_ONE_DEBYE_WALLER = (
    "use augmentation.debye_waller: true with augmentation.debye_waller_b: [B, B] for a fixed B "
    "(it was added to the B drawn under augmentation)"
)
REMOVED_FIELDS = {  # field: (the switch that made it inert when off, what to use instead)
    "simulation.debye_waller": ("simulation.debye_waller", _ONE_DEBYE_WALLER),
    "simulation.debye_waller_b": ("simulation.debye_waller", _ONE_DEBYE_WALLER),
    "experiment.dedupe_ids": ("experiment.dedupe_ids", "use collection.id_column: material_id (one record per id)"),
}


def _section_of(data: dict, dotted: str) -> tuple[Optional[dict], str]:
    """(the mapping that holds the field, the field's name); None where the path is not a mapping."""
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), leaf


def _rename_old_fields(data: dict, source: str) -> None:
    for old, new in RENAMED_FIELDS.items():
        section, leaf = _section_of(data, old)
        if section is None or leaf not in section:
            continue
        value = section.pop(leaf)
        new_leaf = new.rsplit(".", 1)[1]
        if new_leaf in section and section[new_leaf] != value:
            raise UserError(f"{source}: {old} is the old name of {new}; give {new} only")
        section.setdefault(new_leaf, value)


def _drop_removed_fields(data: dict, source: str) -> None:
    for old, (switch, instead) in REMOVED_FIELDS.items():
        section, leaf = _section_of(data, old)
        if section is None or leaf not in section:
            continue
        holder, switch_leaf = _section_of(data, switch)
        if holder is not None and holder.get(switch_leaf):
            raise UserError(f"{source}: {old} was removed; {instead}")
        section.pop(leaf)


def _drop_copied_limits(data: dict) -> None:
    """A written config carries the generator's copies of the statistics' limits; where a copy equals
    the statistics' value it is dropped, so that an override of the statistics' limit carries over."""
    statistics, generation = data.get("statistics"), data.get("generation")
    if isinstance(statistics, dict) and isinstance(generation, dict):
        for name in GENERATOR_LIMITS:
            if name in generation and generation[name] == statistics.get(name):
                del generation[name]


def _arm_of_old_metadata(data: dict) -> None:
    """An experiment written before `experiment.arms` fed its metadata to arm A's statistics: that arm is
    now `synthetic_icsd` (the class list comes from the statistics part in either case)."""
    experiment = data.get("experiment")
    if isinstance(experiment, dict) and experiment.get("metadata") and "arms" not in experiment:
        experiment["arms"] = ["synthetic_icsd", "structures"]


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
    `overrides` applied, validated; an invalid value is one line naming `source` and the field.
    Old field names (`RENAMED_FIELDS`, `REMOVED_FIELDS`) are read as their successors."""
    data = copy.deepcopy(data)
    _rename_old_fields(data, source)
    _drop_copied_limits(data)
    _arm_of_old_metadata(data)
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = RENAMED_FIELDS.get(dotted, dotted).split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    _drop_removed_fields(data, source)
    try:
        return Config(**data)
    except ValidationError as exc:
        raise UserError(_format_validation_error(source, exc)) from None
