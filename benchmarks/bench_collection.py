"""Collection reading speed: serial in-process vs Ray tasks, CIFs/s/core, and the time for 200,000 CIFs.

    .venv/bin/python benchmarks/bench_collection.py [SOURCE ...] [--serial-n 400] [--cpus N]

SOURCE defaults to ../shared/data/mp40/*.csv when present, else the embedded default. The serial
reference reads the first `--serial-n` records in this process; Ray reads all of them as chunked
tasks on a local Ray with `--cpus` CPUs (default: all). Both include parsing (pymatgen), symmetry
and conventional cell (spglib) and Wyckoff sites.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*")
    parser.add_argument("--serial-n", type=int, default=400)
    parser.add_argument("--cpus", type=int, default=os.cpu_count())
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from services.collection_reader import ray_map_chunks
    from services.ray_runtime import ray_session
    from xrdgen.collection import chunked, list_records, read_chunk
    from xrdgen.config import CollectionConfig

    sources = args.sources or sorted(str(p) for p in (ROOT.parent / "shared" / "data" / "mp40").glob("*.csv")) or ["default"]
    records = list_records(sources)
    config = CollectionConfig()
    print(f"source: {', '.join(sources)} ({len(records)} records), chunk_size={config.chunk_size}")

    subset = records[: args.serial_n]
    read_chunk(subset[:5], config)  # imports and numba/pymatgen warm-up outside the timing
    start = time.perf_counter()
    entries, skipped = read_chunk(subset, config)
    serial_s = time.perf_counter() - start
    serial_rate = len(subset) / serial_s
    print(f"serial (1 core): {len(subset)} CIFs in {serial_s:.1f} s -> {serial_rate:.1f} CIFs/s/core ({len(skipped)} skipped)")

    with ray_session(num_cpus=args.cpus):
        import ray

        cpus = int(ray.cluster_resources().get("CPU", 1))
        list(ray_map_chunks(chunked(records[:cpus * 4], 4), config, progress=False))  # start the workers
        start = time.perf_counter()
        n = sum(len(e) + len(s) for e, s in ray_map_chunks(chunked(records, config.chunk_size), config, progress=False))
        ray_s = time.perf_counter() - start
    ray_rate = n / ray_s
    print(f"ray ({cpus} CPUs): {n} CIFs in {ray_s:.1f} s -> {ray_rate:.1f} CIFs/s, {ray_rate / cpus:.1f} CIFs/s/core")
    print(f"ratio ray / serial throughput: {ray_rate / serial_rate:.2f}x on {cpus} CPUs (ideal {cpus}x)")
    for cores in (1, cpus, 16, 64):
        hours = 200_000 / (ray_rate / cpus * cores) / 3600 if cores > 1 else 200_000 / serial_rate / 3600
        print(f"projected 200,000 CIFs on {cores:>3} core(s): {hours * 60:7.1f} min")


if __name__ == "__main__":
    main()
