"""`xrdgen predict` on 1,000 measured patterns: what reading, preprocessing and ranking add to the model.

Ours: `xrdgen.training.prediction.predict_files`, the path of `xrdgen predict` (read every file,
put it on the model's grid, one batched model call, calibrated top-k and crystal systems), on the
113 RRUFF patterns of rruff_dev repeated to N files. Reference, same run, same inputs: the bare
`model.predict` on the already preprocessed array, the least any prediction costs. Printed: both,
the ratio, ours split into its stages, and the whole command (`xrdgen predict` in a fresh process,
TensorFlow's start-up included) on the same files.

The model is the shipped one when the package has it, else an untrained park_medium on the default
grid with the default statistics' class list (the time does not depend on the weights), written
as a run directory so that both paths load it as a user's run.

    nice .venv/bin/python benchmarks/bench_predict.py [RRUFF_DEV_DIR] [--n 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DIR = Path(os.environ.get("XRDGEN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "rruff_dev"


def model_run(folder: Path) -> Path:
    """The shipped model's folder, else an untrained park_medium written as a run directory in `folder`."""
    from models import build_model
    from xrdgen.config import Config
    from xrdgen.pipeline import resolve_statistics
    from xrdgen.statistics.model import Statistics
    from xrdgen.training.pretrained import pretrained_dir
    from xrdgen.training.rundir import InputSpec
    from xrdgen.training.weights import has_weights, save_weights

    if has_weights(pretrained_dir()):
        return pretrained_dir()
    config = Config()
    spacegroups = [int(sg) for sg in Statistics.load(resolve_statistics("default")[0]).spacegroups]
    spec = InputSpec.from_config(config)
    save_weights(build_model("park_medium", len(spacegroups), spec.n_points), folder)
    meta = {"version": 2, "spacegroups": spacegroups, "model": "park_medium", "input": spec.to_meta(), "preset": "untrained"}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rruff_dev", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--n", type=int, default=1000, help="patterns to predict (the folder's files repeated)")
    args = parser.parse_args()
    found = sorted(p for p in args.rruff_dev.glob("*.csv"))
    if not found:
        raise SystemExit(f"{args.rruff_dev}: no .csv patterns (rruff_dev lives in ../shared/data)")
    files = [found[i % len(found)] for i in range(args.n)]

    import numpy as np

    from xrdgen.measured.readers import read_pattern
    from xrdgen.training.prediction import predict_files
    from xrdgen.training.rundir import load_model_run

    with tempfile.TemporaryDirectory() as tmp:
        run = model_run(Path(tmp))
        start = time.perf_counter()
        trained = load_model_run(run)
        load_s = time.perf_counter() - start
        predict_files(trained, files[:300])  # warm-up: Keras traces its predict function (full and last batch) untimed

        start, cpu = time.perf_counter(), time.process_time()
        ours = predict_files(trained, files)
        ours_s, ours_cpu = time.perf_counter() - start, time.process_time() - cpu
        assert len(ours.entries) == args.n, ours.failures[:3]

        x = np.stack([m.x for m in ours.inputs])
        start, cpu = time.perf_counter(), time.process_time()
        trained.model.predict(x, batch_size=256, verbose=0)
        reference_s, reference_cpu = time.perf_counter() - start, time.process_time() - cpu

        start, cpu = time.perf_counter(), time.process_time()
        for path in files:
            trained.model_input(read_pattern(path))
        read_s, read_cpu = time.perf_counter() - start, time.process_time() - cpu

        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, "-c", "from xrdgen.cli import main; main()", "predict", "--model", str(run), *map(str, files)]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        command_s = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"xrdgen predict failed: {done.stderr.strip().splitlines()[-1:]}")

    print(
        f"{args.n} patterns ({len(found)} rruff_dev files repeated), model {trained.name} "
        f"({trained.model.count_params():,} parameters, {len(trained.spacegroups)} classes, {trained.spec.n_points} points), "
        f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at the end"
    )
    print("wall time, and CPU time of all threads (steadier when others share the cores):")
    print(
        f"xrdgen predict_files (read + preprocess + model + top-k)   : {ours_s:7.2f} s, CPU {ours_cpu:6.2f} s ({args.n / ours_s:6.1f} patterns/s)"
    )
    print(
        f"bare model.predict on the preprocessed inputs (reference)  : {reference_s:7.2f} s, CPU {reference_cpu:6.2f} s "
        f"({args.n / reference_s:6.1f} patterns/s)"
    )
    print(
        f"ratio ours / reference                                     : {ours_s / reference_s:7.2f}x, CPU {ours_cpu / reference_cpu:.2f}x"
    )
    print(
        f"  of ours: read + preprocess {read_s:.2f} s (CPU {read_cpu:.2f} s), "
        f"the rest (model call, top-k, crystal systems) {ours_s - read_s:.2f} s (CPU {ours_cpu - read_cpu:.2f} s)"
    )
    print(f"model load (once per command)                              : {load_s:7.2f} s")
    print(
        f"`xrdgen predict --model RUN` on the {args.n} files, fresh process : {command_s:7.2f} s (TensorFlow start-up included)"
    )


if __name__ == "__main__":
    main()
