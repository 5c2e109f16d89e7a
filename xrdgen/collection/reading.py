"""Reading a whole collection: list its records, cut them into chunks, parse every chunk.

Reading has two halves so that Ray stays out of `xrdgen/`:

1. `list_records(source)` enumerates cheap `RawRecord`s: "embedded" (the structures of the
   installed packages), a directory of CIFs (`.cif`, `.cif.gz`; without CIFs: its CSVs), a CSV
   with a `cif` column (`.csv`, `.csv.gz`), a single CIF, or a list of these;
2. `read_records` drops repeated ids when `CollectionConfig.id_column` is set (`deduplicate`: the
   first record of an id is read, the others are listed as duplicates), then parses the records
   chunk by chunk with `read_chunk`, through a `map_chunks` callable: `serial_map_chunks` here, or
   the Ray mapper that `services.collection_reader` provides to run the chunks as Ray tasks.
   Results come back in record order either way.

Progress (`xrdgen.progress.Progress`) shows structures/s and the time left: a tqdm bar on a
terminal, a log line every 30 seconds otherwise (a background build logging to a file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Optional

from xrdgen.collection.embedded import embedded_records
from xrdgen.collection.entries import CollectionEntry, CollectionReport, Skipped, read_chunk
from xrdgen.collection.records import (
    CIF_SUFFIXES,
    CSV_SUFFIXES,
    RawRecord,
    cif_file_record,
    csv_records,
    deduplicate,
    directory_records,
    has_suffix,
)
from xrdgen.config import CollectionConfig, Config
from xrdgen.errors import UserError
from xrdgen.progress import Progress

EMBEDDED_SOURCE = "embedded"
# `default` is never a collection: it names the shipped statistics file (xrdgen.collection.shipped).
SHIPPED_STATISTICS_NAME = "default"

Source = str | Path | Sequence[str | Path]
ChunkResult = tuple[list[CollectionEntry], list[Skipped]]
ChunkMapper = Callable[[list[list[RawRecord]], CollectionConfig], Iterator[ChunkResult]]


def list_records(source: Source, id_column: Optional[str] = None) -> list[RawRecord]:
    """Records of `source`: "embedded", a directory (CIFs, else CSVs, found recursively), a CSV, a CIF, or a list of these.

    `id_column`: the CSV column that identifies a structure (must exist in every CSV). A source that
    does not exist or holds nothing readable is a `UserError`.
    """
    if isinstance(source, (list, tuple)):
        records: list[RawRecord] = []
        for one in source:
            records.extend(list_records(one, id_column))
        return records
    if str(source) == EMBEDDED_SOURCE:
        return embedded_records()
    if str(source) == SHIPPED_STATISTICS_NAME:
        raise UserError(
            f"'{SHIPPED_STATISTICS_NAME}' names the statistics shipped in the package (`xrdgen stats show default`), "
            f"not a collection; the 406 structures shipped in pymatgen, pyxtal and ASE are '{EMBEDDED_SOURCE}'"
        )
    path = Path(source)
    if path.is_dir():
        return directory_records(path, id_column)
    if path.is_file() and has_suffix(path, CSV_SUFFIXES):
        return csv_records(path, id_column)
    if path.is_file() and has_suffix(path, CIF_SUFFIXES):
        return [cif_file_record(path)]
    if not path.exists():
        raise UserError(f"{path}: no such file or directory (expected a CIF directory, a CSV, or '{EMBEDDED_SOURCE}')")
    raise UserError(
        f"{path}: not a collection (expected a directory of CIFs, a .csv or .csv.gz with a 'cif' column, "
        f"a .cif or .cif.gz, or '{EMBEDDED_SOURCE}')"
    )


def source_name(source: Source) -> str:
    """How reports and provenance name a source (a list is joined with commas)."""
    return str(source) if isinstance(source, (str, Path)) else ", ".join(str(s) for s in source)


def chunked(records: Sequence[RawRecord], size: int) -> list[list[RawRecord]]:
    return [list(records[i : i + size]) for i in range(0, len(records), size)]


def serial_map_chunks(chunks: list[list[RawRecord]], config: CollectionConfig, progress: bool = True) -> Iterator[ChunkResult]:
    """The plain in-process mapper, with progress over structures."""
    with Progress(sum(len(c) for c in chunks), "reading structures", enabled=progress) as bar:
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

    With `config.id_column` set, a record whose id was listed before is not parsed: it is reported
    as a duplicate naming the first one. `map_chunks(chunks, collection_config)` yields `read_chunk`
    results in order; None: serial.
    """
    duplicates: list[Skipped] = []
    if config.id_column is not None:
        records, repeated = deduplicate(records)
        duplicates = [
            Skipped(dup.source_id, f"duplicate id: {dup.record_id} also in {first.source_id}") for dup, first in repeated
        ]
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
    return CollectionReport(source=name, entries=entries, skipped=skipped, duplicates=duplicates)


def read_collection(
    source: Source,
    config: Config | CollectionConfig,
    map_chunks: Optional[ChunkMapper] = None,
    progress: bool = True,
) -> CollectionReport:
    """Read every structure of `source` (`list_records` then `read_records`)."""
    collection_config = config.collection if isinstance(config, Config) else config
    records = list_records(source, collection_config.id_column)
    return read_records(records, collection_config, source_name(source), map_chunks, progress)
