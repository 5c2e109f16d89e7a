"""Collection reading speed: serial in-process vs Ray tasks, CIFs/s/core, and the time for 200,000 CIFs.

    .venv/bin/python benchmarks/bench_collection.py [SOURCE ...] [--serial-n 400] [--cpus N]

SOURCE defaults to ../shared/data/mp40/*.csv when present, else the embedded default. Both runs go
through the pipeline's reading step (`xrdgen.collection.reading.read_records`, as
`xrdgen.pipeline` calls it): the serial reference reads the first `--serial-n` records in this
process; the Ray run reads all of them with the services' mapper (`ray_map_chunks`) on a local Ray
with `--cpus` CPUs (default: all). Both include parsing (pymatgen), symmetry and conventional cell
(spglib) and Wyckoff sites.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from functools import partial
from pathlib import Path

import ray

from services.collection_reader import ray_map_chunks
from services.ray_runtime import ray_session
from xrdgen.collection.entries import read_chunk
from xrdgen.collection.reading import list_records, read_records, source_name
from xrdgen.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*")
    parser.add_argument("--serial-n", type=int, default=400)
    parser.add_argument("--cpus", type=int, default=os.cpu_count())
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    sources = args.sources or sorted(str(p) for p in (ROOT.parent / "shared" / "data" / "mp40").glob("*.csv")) or ["default"]
    records = list_records(sources)
    name = source_name(sources)
    config = load_config().collection
    print(f"source: {name} ({len(records)} records), chunk_size={config.chunk_size}")

    subset = records[: args.serial_n]
    read_chunk(subset[:5], config)  # imports and numba/pymatgen warm-up outside the timing
    start = time.perf_counter()
    serial = read_records(subset, config, name, progress=False)
    serial_s = time.perf_counter() - start
    serial_rate = len(subset) / serial_s
    print(f"serial (1 core): {len(subset)} CIFs in {serial_s:.1f} s -> {serial_rate:.1f} CIFs/s/core ({len(serial.skipped)} skipped)")

    with ray_session(num_cpus=args.cpus):
        cpus = int(ray.cluster_resources().get("CPU", 1))
        read_records(records[: cpus * 4], config.model_copy(update={"chunk_size": 4}), name, partial(ray_map_chunks, progress=False))  # start the workers
        start = time.perf_counter()
        report = read_records(records, config, name, partial(ray_map_chunks, progress=False))
        ray_s = time.perf_counter() - start
    n = report.counts["records"]
    ray_rate = n / ray_s
    print(f"ray ({cpus} CPUs): {n} CIFs in {ray_s:.1f} s -> {ray_rate:.1f} CIFs/s, {ray_rate / cpus:.1f} CIFs/s/core")
    print(f"ratio ray / serial throughput: {ray_rate / serial_rate:.2f}x on {cpus} CPUs (ideal {cpus}x)")
    for cores in (1, cpus, 16, 64):
        hours = 200_000 / (ray_rate / cpus * cores) / 3600 if cores > 1 else 200_000 / serial_rate / 3600
        print(f"projected 200,000 CIFs on {cores:>3} core(s): {hours * 60:7.1f} min")


if __name__ == "__main__":
    main()
