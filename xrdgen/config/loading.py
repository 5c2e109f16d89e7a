"""Reading a config: YAML files, `--set` overrides, a stored run's copy; every problem as one line."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional

import yaml
from pydantic import ValidationError

from xrdgen.config.root import Config
from xrdgen.errors import UserError


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
