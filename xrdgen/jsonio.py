"""JSON files, plain or gzip-compressed by their name (.json / .json.gz), with one-line errors.

Statistics and entry files may come from someone else, so they are JSON (never pickle) and every
read failure names the file and what kind of file was expected.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from xrdgen.errors import UserError


def write_json(path: Path | str, data: Any) -> Path:
    """Compact JSON; gzip-compressed when the name ends in .gz. Parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, separators=(",", ":"))
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def read_json(path: Path | str, kind: str) -> Any:
    """Parsed JSON of `path`; a missing or unreadable file is a `UserError` naming it and `kind`."""
    path = Path(path)
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                return json.load(handle)
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such {kind} file") from None
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable JSON {kind} file ({type(exc).__name__})") from None
