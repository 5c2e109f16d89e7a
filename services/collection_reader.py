"""Read and group a crystal collection in parallel: Ray tasks for the two costly steps of the pipeline.

Parsing a CIF with pymatgen and finding its symmetry with spglib costs ~10-20 ms, so an
ICSD-sized export (200,000 CIFs) is an hour on one core and minutes on a cluster; the prototype
grouping of the structure-type split (StructureMatcher inside candidate buckets) is the other
serial cost. The work is the plain `xrdgen` functions (`read_chunk`, `match_bucket`); this module
only distributes it:

- `ray_map_chunks` is the `map_chunks` of `xrdgen.collection.reading`: one task per chunk of
  records, at most `max_in_flight` outstanding (memory stays bounded), results in order;
- `ray_map_groups` is the `map_groups` of `xrdgen.collection.split`: buckets packed into tasks of
  similar cost (a bucket of n structures costs up to n² comparisons), the costliest submitted
  first so that one large bucket does not finish last, results in bucket order.

`ray_mappers` gives both for one Ray session, so `xrdgen` never imports Ray.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial
from typing import Optional

import ray

from services.ray_runtime import ray_session
from xrdgen.collection.entries import CollectionReport, read_chunk
from xrdgen.collection.reading import ChunkMapper, ChunkResult, Source, read_collection
from xrdgen.collection.records import RawRecord
from xrdgen.collection.split import GroupMapper, match_bucket
from xrdgen.config import CollectionConfig, Config
from xrdgen.crystal import Crystal
from xrdgen.progress import Progress

TASKS_PER_CPU = 16  # grouping tasks per CPU: pieces small enough to balance (costs are rough), each still many comparisons


def _read_chunk_task(records: list[RawRecord], config: CollectionConfig) -> ChunkResult:
    return read_chunk(records, config)


def _match_buckets_task(buckets: list[list[Crystal]]) -> list[list[list[int]]]:
    return [match_bucket(bucket) for bucket in buckets]


def _cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def ray_map_chunks(
    chunks: list[list[RawRecord]], config: CollectionConfig, progress: bool = True, max_in_flight: Optional[int] = None
) -> Iterator[ChunkResult]:
    """Yield `read_chunk` results of `chunks` in order, computed as Ray tasks (Ray must be initialised)."""
    remote = ray.remote(num_cpus=1, max_retries=2)(_read_chunk_task)
    if max_in_flight is None:
        max_in_flight = max(2, 4 * _cpus())
    config_ref = ray.put(config)
    pending: list = []
    next_chunk = 0
    with Progress(sum(len(c) for c in chunks), "reading structures", enabled=progress) as bar:
        while next_chunk < len(chunks) or pending:
            while next_chunk < len(chunks) and len(pending) < max_in_flight:
                pending.append((len(chunks[next_chunk]), remote.remote(chunks[next_chunk], config_ref)))
                next_chunk += 1
            size, ref = pending.pop(0)
            result = ray.get(ref)
            bar.update(size)
            yield result


def pack_buckets(sizes: list[int], n_tasks: int) -> list[list[int]]:
    """Consecutive bucket indices packed into about `n_tasks` tasks of similar cost (size²)."""
    costs = [n * n for n in sizes]
    target = max(1.0, sum(costs) / max(1, n_tasks))
    tasks: list[list[int]] = []
    current: list[int] = []
    load = 0.0
    for i, cost in enumerate(costs):
        current.append(i)
        load += cost
        if load >= target:
            tasks.append(current)
            current, load = [], 0.0
    if current:
        tasks.append(current)
    return tasks


def ray_map_groups(buckets: list[list[Crystal]], progress: bool = True) -> list[list[list[int]]]:
    """`match_bucket` of every bucket, computed as Ray tasks, in bucket order (Ray must be initialised)."""
    if not buckets:
        return []
    remote = ray.remote(num_cpus=1, max_retries=2)(_match_buckets_task)
    tasks = pack_buckets([len(b) for b in buckets], TASKS_PER_CPU * _cpus())
    costs = [sum(len(buckets[i]) ** 2 for i in task) for task in tasks]
    order = sorted(range(len(tasks)), key=lambda t: -costs[t])  # costliest first
    refs = {remote.remote([buckets[i] for i in tasks[t]]): t for t in order}
    results: list[Optional[list[list[int]]]] = [None] * len(buckets)
    with Progress(sum(len(b) for b in buckets), "grouping prototypes", enabled=progress) as bar:
        waiting = list(refs)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            task = refs[done[0]]
            for i, groups in zip(tasks[task], ray.get(done[0])):
                results[i] = groups
            bar.update(sum(len(buckets[i]) for i in tasks[task]))
    return results  # type: ignore[return-value]


@contextlib.contextmanager
def ray_mappers(
    address: Optional[str] = None, num_cpus: Optional[int] = None, progress: bool = True
) -> Iterator[tuple[ChunkMapper, GroupMapper]]:
    """(map_chunks, map_groups) on a running Ray (or a local one started for the block)."""
    with ray_session(address=address, num_cpus=num_cpus):
        yield partial(ray_map_chunks, progress=progress), partial(ray_map_groups, progress=progress)


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
