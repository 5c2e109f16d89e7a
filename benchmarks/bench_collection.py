"""Collection reading and prototype grouping on mp26k: serial (the reference) vs Ray tasks (ours), and
the time for 200,000 structures on 1 and 16 cores.

    nice -n 10 .venv/bin/python benchmarks/bench_collection.py [SOURCE ...] [--serial-n 1000] [--group-n 6000]
        [--cpus N] [--entries-cache runs/mp26k.entries.json.gz]

SOURCE defaults to ../shared/data/mp26k (ids deduplicated by `material_id`). Both halves run the
pipeline's own steps:

1. reading (`xrdgen.collection.reading.read_records`): the serial reference parses an evenly spaced
   subset of `--serial-n` records in this process; ours parses every record as Ray tasks
   (`services.collection_reader.ray_map_chunks`) on a local Ray with `--cpus` CPUs. Parsing
   (pymatgen), symmetry and conventional cell (spglib) and Wyckoff sites are all included;
2. prototype grouping (`xrdgen.collection.split.group_keys`): serial (`serial_map_groups`) vs Ray
   (`ray_map_groups`) on an evenly spaced subset of `--group-n` entries (the whole of mp26k costs
   tens of CPU minutes), checked to give the same keys; the serial grouping of every other entry
   of that subset gives the growth exponent k of the grouping time, t ∝ N^k (a structure meets
   more candidates of other prototypes in a larger collection).

Fair comparison on a shared machine: the serial reference runs inside one Ray worker, so it has
the niceness of the Ray workers (Ray lowers its workers' priority); it also reports its CPU time,
which gives the per-core rate r_1 independent of other load.

Projection to N = 200,000 structures on c cores: reading N / (r_1 · c · e_read), with
e_read = (Ray rate / serial rate) / cpus the measured parallel efficiency (at most 1); grouping
T_1 · (N / n)^k / (c · e_group), T_1 the serial CPU time on n entries and e_group measured alike,
but never below the largest bucket's CPU time scaled alike (one bucket is one task). Both are also
given at full efficiency (e = 1): on a loaded machine the measured e says more about the load.
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings
from functools import partial
from pathlib import Path

import ray

from services.collection_reader import ray_map_chunks, ray_map_groups
from services.ray_runtime import ray_session
from xrdgen.collection.cache import ReadCache
from xrdgen.collection.reading import list_records, read_records, source_name
from xrdgen.collection.records import deduplicate
from xrdgen.collection.split import candidate_buckets, group_keys, match_bucket, serial_map_groups
from xrdgen.config import load_config

ROOT = Path(__file__).resolve().parents[1]
MP26K = ROOT.parent / "shared" / "data" / "mp26k"
TARGET = 200_000


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def timed_call(fn, *args):
    """(fn(*args), wall seconds, CPU seconds of this process): run inside a Ray worker."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*")
    parser.add_argument("--serial-n", type=int, default=1000, help="records of the serial reading reference")
    parser.add_argument("--group-n", type=int, default=6000, help="entries of the grouping comparison")
    parser.add_argument("--cpus", type=int, default=os.cpu_count())
    parser.add_argument("--id-column", default="material_id")
    parser.add_argument("--entries-cache", type=Path, default=None, help="reuse the entries of an earlier read for the grouping")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    sources = args.sources or [str(MP26K)]
    config = load_config(overrides={"collection.id_column": args.id_column})
    records, duplicates = deduplicate(list_records(sources, args.id_column))
    name = source_name(sources)
    print(
        f"source: {name}: {len(records)} records ({len(duplicates)} repeated ids left out), chunk_size={config.collection.chunk_size}"
    )
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")

    step = max(1, len(records) // args.serial_n)
    subset = records[::step][: args.serial_n]

    with ray_session(num_cpus=args.cpus):
        cpus = int(ray.cluster_resources().get("CPU", 1))
        in_worker = ray.remote(num_cpus=1)(timed_call)
        warm = config.collection.model_copy(update={"chunk_size": 4})
        read_records(records[: cpus * 4], warm, name, partial(ray_map_chunks, progress=False))  # start the workers
        serial, serial_s, serial_cpu = ray.get(in_worker.remote(read_records, subset, config.collection, name, None, False))
        cache = ReadCache(args.entries_cache, sources, config.collection) if args.entries_cache else None
        cached = cache.load() if cache is not None else None
        if cached is None:
            report, ray_read_s = timed(
                lambda: read_records(records, config.collection, name, partial(ray_map_chunks, progress=False))
            )
        else:
            report, ray_read_s = cached, math.nan
        entries = report.entries[:: max(1, len(report.entries) // args.group_n)][: args.group_n]
        ray_keys, ray_group_s = timed(lambda: group_keys(entries, "prototype", partial(ray_map_groups, progress=False)))
        serial_keys, serial_group_s, group_cpu = ray.get(in_worker.remote(group_keys, entries, "prototype", serial_map_groups))
        _, _, half_cpu = ray.get(in_worker.remote(group_keys, entries[::2], "prototype", serial_map_groups))
        buckets = [b for b in candidate_buckets(entries) if len(b) > 1]
        largest = max(buckets, key=len)
        _, _, largest_cpu = ray.get(in_worker.remote(match_bucket, [entries[i].crystal for i in largest]))
    if serial_keys != ray_keys:
        raise SystemExit("Ray grouping differs from the serial grouping")
    exponent = math.log(group_cpu / half_cpu) / math.log(len(entries) / len(entries[::2]))

    serial_rate, cpu_rate = len(subset) / serial_s, len(subset) / serial_cpu
    ray_rate = len(records) / ray_read_s
    e_read = min(1.0, ray_rate / (cpus * serial_rate)) if not math.isnan(ray_rate) else 1.0
    e_group = min(1.0, serial_group_s / (cpus * ray_group_s))
    print(f"\nreading ({len(subset)} serial, {len(records)} on Ray; {len(serial.skipped)} / {len(report.skipped)} skipped)")
    print(f"  reference, serial (1 core): {serial_rate:8.1f} structures/s ({cpu_rate:.1f} per CPU second)")
    if cached is None:
        print(
            f"  ours, Ray ({cpus} CPUs):      {ray_rate:8.1f} structures/s  -> ratio {ray_rate / serial_rate:.2f}x (ideal {cpus}x)"
        )
    else:
        print(f"  ours, Ray: not measured (entries from {args.entries_cache})")
    print(f"prototype grouping of {len(entries)} structures ({len(set(serial_keys))} groups, Ray keys identical)")
    print(
        f"  reference, serial (1 core): {serial_group_s:8.1f} s = {len(entries) / serial_group_s:7.1f} structures/s ({group_cpu:.1f} CPU s)"
    )
    print(
        f"  ours, Ray ({cpus} CPUs):      {ray_group_s:8.1f} s = {len(entries) / ray_group_s:7.1f} structures/s"
        f"  -> ratio {serial_group_s / ray_group_s:.2f}x"
    )
    print(
        f"  growth: half the entries {half_cpu:.1f} CPU s -> t ∝ N^{exponent:.2f}; {len(buckets)} buckets to match, "
        f"the largest {len(largest)} structures: {largest_cpu:.1f} CPU s"
    )
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"\nprojection to {TARGET:,} structures (measured parallel efficiency: read {e_read:.2f}, grouping {e_group:.2f}):")
    scale = (TARGET / len(entries)) ** exponent
    group_1, floor = group_cpu * scale, largest_cpu * scale
    for cores in (1, 16):
        for label, e_r, e_g in (("measured e", e_read, e_group), ("e = 1", 1.0, 1.0)):
            read_min = TARGET / (cpu_rate * (1 if cores == 1 else cores * e_r)) / 60
            group_min = max(group_1 / (1 if cores == 1 else cores * e_g), floor) / 60
            print(f"  {cores:>2} core(s), {label:10s}: reading {read_min:7.1f} min, grouping {group_min:7.1f} min")
            if cores == 1:
                break


if __name__ == "__main__":
    main()
