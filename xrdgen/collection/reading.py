"""Reading a whole collection: list its records, cut them into chunks, parse every chunk.

Reading has two halves so that Ray stays out of `xrdgen/`:

1. `list_records(source)` enumerates cheap `RawRecord`s: "default" (the embedded structures of the
   installed packages), a directory of CIFs, a CSV with a `cif` column, or a list of these;
2. `read_records` parses them chunk by chunk with `read_chunk`, through a `map_chunks` callable:
   `serial_map_chunks` here, or the Ray mapper that `services.collection_reader` provides to run
   the chunks as Ray tasks. Results come back in record order either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Optional

from tqdm import tqdm

from xrdgen.collection.embedded import embedded_records
from xrdgen.collection.entries import CollectionEntry, CollectionReport, Skipped, read_chunk
from xrdgen.collection.records import CIF_SUFFIXES, RawRecord, cif_directory_records, csv_records
from xrdgen.config import CollectionConfig, Config
from xrdgen.errors import UserError

DEFAULT_SOURCE = "default"

Source = str | Path | Sequence[str | Path]
ChunkResult = tuple[list[CollectionEntry], list[Skipped]]
ChunkMapper = Callable[[list[list[RawRecord]], CollectionConfig], Iterator[ChunkResult]]


def list_records(source: Source) -> list[RawRecord]:
    """Records of `source`: "default", a directory (CIFs found recursively), a CSV, or a list of these.

    A source that does not exist or holds nothing readable is a `UserError`.
    """
    if isinstance(source, (list, tuple)):
        records: list[RawRecord] = []
        for one in source:
            records.extend(list_records(one))
        return records
    if str(source) == DEFAULT_SOURCE:
        return embedded_records()
    path = Path(source)
    if path.is_dir():
        return cif_directory_records(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        return csv_records(path)
    if path.is_file() and path.suffix.lower() in CIF_SUFFIXES:
        return [RawRecord(source_id=str(path), path=str(path))]
    if not path.exists():
        raise UserError(f"{path}: no such file or directory (expected a CIF directory, a CSV, or 'default')")
    raise UserError(f"{path}: not a collection (expected a directory of CIFs, a .csv with a 'cif' column, or 'default')")


def source_name(source: Source) -> str:
    """How reports and provenance name a source (a list is joined with commas)."""
    return str(source) if isinstance(source, (str, Path)) else ", ".join(str(s) for s in source)


def chunked(records: Sequence[RawRecord], size: int) -> list[list[RawRecord]]:
    return [list(records[i : i + size]) for i in range(0, len(records), size)]


def serial_map_chunks(chunks: list[list[RawRecord]], config: CollectionConfig, progress: bool = True) -> Iterator[ChunkResult]:
    """The plain in-process mapper, with a tqdm bar over structures."""
    with tqdm(total=sum(len(c) for c in chunks), desc="reading structures", unit="cif", disable=not progress) as bar:
        for chunk in chunks:
            yield read_chunk(chunk, config)
            bar.update(len(chunk))


def read_records(
    records: Sequence[RawRecord],
    config: CollectionConfig,
    name: str,
    map_chunks: Optional[ChunkMapper] = None,
    progress: bool = True,
) -> CollectionReport:
    """Parse `records` in chunks of `config.chunk_size`; bad entries are skipped and listed in the report.

    `map_chunks(chunks, collection_config)` yields `read_chunk` results in order; None: serial.
    """
    chunks = chunked(records, config.chunk_size)
    if map_chunks is None:
        results = serial_map_chunks(chunks, config, progress=progress)
    else:
        results = map_chunks(chunks, config)
    entries: list[CollectionEntry] = []
    skipped: list[Skipped] = []
    for chunk_entries, chunk_skipped in results:
        entries.extend(chunk_entries)
        skipped.extend(chunk_skipped)
    return CollectionReport(source=name, entries=entries, skipped=skipped)


def read_collection(
    source: Source,
    config: Config | CollectionConfig,
    map_chunks: Optional[ChunkMapper] = None,
    progress: bool = True,
) -> CollectionReport:
    """Read every structure of `source` (`list_records` then `read_records`)."""
    collection_config = config.collection if isinstance(config, Config) else config
    return read_records(list_records(source), collection_config, source_name(source), map_chunks, progress)
