"""Read a crystal collection in parallel: one Ray task per chunk of records, results in order.

Parsing a CIF with pymatgen and finding its symmetry with spglib costs ~10-20 ms, so an
ICSD-sized export (200,000 CIFs) is an hour on one core and minutes on a cluster. The work per
chunk is the plain `xrdgen.collection.entries.read_chunk`; this module only distributes it, keeps
at most `max_in_flight` chunks outstanding (memory stays bounded), and drives a tqdm bar.
`ray_chunk_mapper` is the `map_chunks` callable that `xrdgen.pipeline` and
`xrdgen.collection.reading` accept, so the science package never imports Ray.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

import ray
from tqdm import tqdm

from services.ray_runtime import ray_session
from xrdgen.collection.entries import CollectionReport, read_chunk
from xrdgen.collection.reading import ChunkMapper, ChunkResult, Source, read_collection
from xrdgen.collection.records import RawRecord
from xrdgen.config import CollectionConfig, Config


def _read_chunk_task(records: list[RawRecord], config: CollectionConfig) -> ChunkResult:
    return read_chunk(records, config)


def ray_map_chunks(
    chunks: list[list[RawRecord]], config: CollectionConfig, progress: bool = True, max_in_flight: Optional[int] = None
) -> Iterator[ChunkResult]:
    """Yield `read_chunk` results of `chunks` in order, computed as Ray tasks (Ray must be initialised)."""
    remote = ray.remote(num_cpus=1, max_retries=2)(_read_chunk_task)
    if max_in_flight is None:
        max_in_flight = max(2, 4 * int(ray.cluster_resources().get("CPU", 1)))
    config_ref = ray.put(config)
    pending: list = []
    next_chunk = 0
    with tqdm(total=sum(len(c) for c in chunks), desc="reading structures", unit="cif", disable=not progress) as bar:
        while next_chunk < len(chunks) or pending:
            while next_chunk < len(chunks) and len(pending) < max_in_flight:
                pending.append((len(chunks[next_chunk]), remote.remote(chunks[next_chunk], config_ref)))
                next_chunk += 1
            size, ref = pending.pop(0)
            result = ray.get(ref)
            bar.update(size)
            yield result


def ray_chunk_mapper(address: Optional[str] = None, num_cpus: Optional[int] = None, progress: bool = True) -> ChunkMapper:
    """A `map_chunks` that joins a running Ray (or starts a local one) for the duration of one read."""

    def map_chunks(chunks: list[list[RawRecord]], config: CollectionConfig) -> Iterator[ChunkResult]:
        with ray_session(address=address, num_cpus=num_cpus):
            yield from ray_map_chunks(chunks, config, progress=progress)

    return map_chunks


def read_collection_parallel(
    source: Source,
    config: Config | CollectionConfig,
    address: Optional[str] = None,
    num_cpus: Optional[int] = None,
    progress: bool = True,
) -> CollectionReport:
    """`read_collection` with chunks as Ray tasks; joins a running Ray or starts a local one for the call."""
    return read_collection(source, config, map_chunks=ray_chunk_mapper(address, num_cpus, progress), progress=progress)
