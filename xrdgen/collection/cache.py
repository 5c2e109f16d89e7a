"""A read collection kept on disk, so that a large collection is parsed once and not at every build.

Reading mp26k (27,354 CIFs) costs minutes of CPU, and its prototype grouping as much again; a
statistics build that only changes statistics settings (class list, metadata) needs neither again.
The cache is an entries file (`save_entries` format, so it is plain JSON) whose meta holds:

- `key`: the source files (path, size, SHA-256 of the content) and the collection config; a cache
  whose key differs from the current read is ignored and rewritten, never silently reused. The
  content, not the modification time: a copied or re-provisioned data folder keeps its cache;
- the skipped and duplicate records of the read (the report is rebuilt from the cache in full);
- `group_keys`: the structure-type group key per entry, per grouping mode, once computed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from xrdgen.collection.entries import CollectionReport, Skipped, load_entries_file, save_entries
from xrdgen.collection.reading import EMBEDDED_SOURCE
from xrdgen.config import CollectionConfig


def cache_key(sources: Sequence[str | Path], config: CollectionConfig) -> dict:
    """What a cached read depends on: every source file (size, content hash) and the collection config."""
    files = []
    for source in sources:
        if str(source) == EMBEDDED_SOURCE:
            files.append([str(source), 0, 0])
            continue
        path = Path(source)
        members = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for member in members:
            files.append([str(member.resolve()), member.stat().st_size, file_digest(member)])
    return {"files": files, "collection": config.model_dump(mode="json")}


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB blocks: mp26k's 60 MB hash in well under a second)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ReadCache:
    """The cache file `path` for the read of `sources` with `config` (see the module docstring)."""

    def __init__(self, path: Path | str, sources: Sequence[str | Path], config: CollectionConfig):
        self.path = Path(path)
        self.key = cache_key(sources, config)
        self._meta: Optional[dict] = None
        self._report: Optional[CollectionReport] = None

    def load(self) -> Optional[CollectionReport]:
        """The cached report, or None when there is no cache or it is for another read."""
        if not self.path.exists():
            return None
        entries, meta = load_entries_file(self.path)
        if meta.get("key") != self.key:
            return None
        self._meta = meta
        self._report = CollectionReport(
            source=meta["source"],
            entries=entries,
            skipped=[Skipped(*item) for item in meta.get("skipped", [])],
            duplicates=[Skipped(*item) for item in meta.get("duplicates", [])],
        )
        return self._report

    def save(self, report: CollectionReport) -> None:
        self._report = report
        self._meta = {
            "key": self.key,
            "source": report.source,
            "skipped": [[s.source_id, s.reason] for s in report.skipped],
            "duplicates": [[s.source_id, s.reason] for s in report.duplicates],
            "group_keys": {},
        }
        self._write()

    def group_keys(self, grouping: str) -> Optional[list[str]]:
        """Cached group keys of the cached entries for `grouping`, if computed before."""
        keys = (self._meta or {}).get("group_keys", {}).get(grouping)
        return list(keys) if keys is not None else None

    def save_group_keys(self, grouping: str, keys: Sequence[str]) -> None:
        if self._meta is None or self._report is None:
            raise RuntimeError("save or load the read before its group keys")
        self._meta.setdefault("group_keys", {})[grouping] = list(keys)
        self._write()

    def _write(self) -> None:
        assert self._meta is not None and self._report is not None
        save_entries(self._report.entries, self.path, self._meta)
