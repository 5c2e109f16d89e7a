"""A trained model as architecture + weights, without optimizer state: how the shipped model is stored.

A run's model.keras (and every checkpoint) carries what training needs besides the weights (Adam's
two moments: twice the weights again); a model that only predicts needs

    model.json    the architecture, Keras' `model.to_json()`
    weights.npz   `model.get_weights()` in order (arr_0, arr_1, ...), float32 or float16

float16 storage halves the file at a relative rounding of 2^-11 ≈ 4.9e-4 per weight (the lead
checks the accuracy before choosing it); loading casts every array back to its variable's dtype, so
the model computes in float32 either way. Keras is imported inside the functions: the CLI's --help
stays light.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xrdgen.errors import UserError

ARCHITECTURE_FILE = "model.json"
WEIGHTS_FILE = "weights.npz"
FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504: a larger weight cannot be stored as float16


def has_weights(folder: Path) -> bool:
    return (folder / ARCHITECTURE_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()


def save_weights(model, folder: Path, float16: bool = False) -> list[Path]:
    """model.json + weights.npz of `model` in `folder` (float16 storage when asked); the paths written."""
    weights = [np.asarray(w) for w in model.get_weights()]
    if float16:
        too_large = max((float(np.abs(w).max()) for w in weights if w.size and np.issubdtype(w.dtype, np.floating)), default=0.0)
        if too_large > FLOAT16_MAX:
            raise UserError(f"a weight of {too_large:.3g} exceeds float16's range ({FLOAT16_MAX:g}); ship it without --float16")
        weights = [w.astype(np.float16) if np.issubdtype(w.dtype, np.floating) else w for w in weights]
    folder.mkdir(parents=True, exist_ok=True)
    architecture = folder / ARCHITECTURE_FILE
    architecture.write_text(model.to_json())
    np.savez(folder / WEIGHTS_FILE, *weights)
    return [architecture, folder / WEIGHTS_FILE]


def load_weights(folder: Path):
    """The `keras.Model` of model.json with the weights of weights.npz, each cast to its variable's dtype."""
    import keras  # lazy: TensorFlow's start-up (module docstring)

    model = keras.models.model_from_json((folder / ARCHITECTURE_FILE).read_text())
    with np.load(folder / WEIGHTS_FILE) as stored:
        weights = [stored[f"arr_{i}"] for i in range(len(stored.files))]
    if len(weights) != len(model.weights):
        raise UserError(
            f"{folder / WEIGHTS_FILE}: {len(weights)} arrays but {ARCHITECTURE_FILE} has {len(model.weights)} weights"
        )
    model.set_weights([w.astype(v.dtype) for w, v in zip(weights, model.weights)])
    return model
