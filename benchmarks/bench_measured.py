"""Reading + preprocessing measured patterns: xrdgen.measured against a bare numpy reference.

Reference (same run, same files): `numpy.loadtxt` + `numpy.interp` onto the grid + min-max scaling,
i.e. the least a script could do without any checks. xrdgen additionally validates every line,
reads headers/wavelengths, fills and reports the uncovered grid. Prints patterns/s per core (one
process) and the ratio xrdgen / reference.

    .venv/bin/python benchmarks/bench_measured.py [LAB17_DIR] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from xrdgen.config import GridConfig
from xrdgen.measured.preprocess import preprocess
from xrdgen.measured.readers import read_pattern

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "lab17"


def reference(path: Path, grid: np.ndarray) -> np.ndarray:
    data = np.loadtxt(path, delimiter=",", ndmin=2)
    y = np.interp(grid, data[:, 0], data[:, 1])
    y -= y.min()
    return (y / y.max()).astype(np.float32)


def timed(fn, files, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for path in files:
            fn(path)
    return len(files) * repeat / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lab17", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    files = sorted(args.lab17.glob("*/pattern.csv"))
    if not files:
        raise SystemExit(f"{args.lab17}: no */pattern.csv files")
    grid = GridConfig()
    two_theta = grid.two_theta()
    n_points = sum(len(read_pattern(p)) for p in files)
    preprocess(read_pattern(files[0]), grid, 1.54056)  # warm-up: imports happen once, outside the timing
    reference(files[0], two_theta)

    ours = timed(lambda p: preprocess(read_pattern(p), grid, 1.54056), files, args.repeat)
    ref = timed(lambda p: reference(p, two_theta), files, args.repeat)
    print(f"{len(files)} files, {n_points} measured points, grid {grid.n_points} points, repeat {args.repeat}")
    print(f"xrdgen.measured read+preprocess : {ours:8.1f} patterns/s per core")
    print(f"numpy loadtxt+interp (reference): {ref:8.1f} patterns/s per core")
    print(f"ratio xrdgen / reference        : {ours / ref:8.2f}x")


if __name__ == "__main__":
    main()
