"""Train and segment time of the default network on each installed Keras backend, on this machine.

The code is backend-neutral (``keras.ops``), so which backend is fastest is a property of the
machine and worth one measurement before a long session: on a 2-core AMD EPYC (no AVX-512)
TensorFlow trained the default network about 2.3x slower than PyTorch. Each backend runs in
its own process (Keras reads ``KERAS_BACKEND`` once, at import) on the same phantom, tiles and
settings - the simulated annotator's protocol tiles on the first development phantom of
``synthetic.suite``, one feature, ``--epochs`` epochs - one after the other, and the table gives
each one's seconds and its ratio to TensorFlow measured in the same run. A backend that is not
installed is listed with how to install it, not skipped silently. IoU is printed only to show
that every backend learned: backends draw different random numbers, so it differs by a few
hundredths from one to the next.

Run::

    .venv/bin/python benchmarks/bench_backends.py              # about 5 minutes on 2 cores
    .venv/bin/python benchmarks/bench_backends.py --epochs 2 --backends tensorflow torch
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BACKENDS = ("tensorflow", "torch", "jax")
FEATURE = ("microtubule", 2)


def measure(epochs: int, shape: tuple[int, int, int]) -> dict[str, Any]:
    """In this process, with its backend: train, segment and score one feature; seconds and IoU."""
    import keras

    from tomoseg_nb.evaluate import evaluate
    from tomoseg_nb.synthetic.suite import HALVES
    from tomoseg_nb.training_config import DEFAULT_TRAINING
    from tomoseg_nb.volume import write_volume

    phantom = HALVES["development"][0].build(shape)
    with tempfile.TemporaryDirectory(prefix="bench-backends-") as scratch:
        path = write_volume(
            Path(scratch) / "tomogram.mrc", phantom.tomogram, voxel_size=phantom.voxel_size
        )
        name, label = FEATURE
        result = evaluate(
            path,
            phantom.labels,
            {name: label},
            config=DEFAULT_TRAINING.replace(epochs=epochs),
            skip_absent=True,
        )["features"][name]
    return {
        "backend": keras.backend.backend(),
        "train_seconds": result["train_seconds"],
        "segment_seconds": result["segment_seconds"],
        "iou": result["iou"],
    }


def run_backend(backend: str, epochs: int, shape: Sequence[int]) -> dict[str, Any]:
    """One backend in a child process (``KERAS_BACKEND`` must be set before Keras is imported)."""
    if importlib.util.find_spec(backend) is None:
        return {"backend": backend, "missing": f"pip install {backend}"}  # PyPI names match
    env = {**os.environ, "KERAS_BACKEND": backend, "TOMOSEG_NB_PROGRESS": "0"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    command = [sys.executable, __file__, "--child", "--epochs", str(epochs), "--shape"]
    start = time.perf_counter()
    done = subprocess.run(
        command + [str(n) for n in shape], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return {"backend": backend, "failed": done.stderr.strip().splitlines()[-1:]}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall": time.perf_counter() - start}


def format_table(rows: list[dict[str, Any]]) -> str:
    """Seconds per backend and the ratio to TensorFlow's (>1: slower than TensorFlow)."""
    base = next((r for r in rows if r["backend"] == "tensorflow" and "train_seconds" in r), None)
    lines = [f"{'backend':12s}{'train s':>9s}{'x TF':>7s}{'segment s':>11s}{'x TF':>7s}{'IoU':>7s}"]
    for row in rows:
        if "train_seconds" not in row:
            why = row.get("missing") or f"failed: {row.get('failed')}"
            lines.append(f"{row['backend']:12s}  not measured ({why})")
            continue
        ratios = [
            f"{row[key] / base[key]:7.2f}" if base else f"{'-':>7s}"
            for key in ("train_seconds", "segment_seconds")
        ]
        lines.append(
            f"{row['backend']:12s}{row['train_seconds']:9.1f}{ratios[0]}"
            f"{row['segment_seconds']:11.1f}{ratios[1]}{row['iou']:7.3f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default 3)")
    parser.add_argument(
        "--shape", type=int, nargs=3, default=[48, 256, 256], metavar=("Z", "Y", "X")
    )
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shape = (args.shape[0], args.shape[1], args.shape[2])
    if args.child:
        print(json.dumps(measure(args.epochs, shape)))
        return 0
    print(
        f"{args.epochs} epochs of the default network on {shape} ({FEATURE[0]}), "
        f"{os.cpu_count()} CPU cores, load average at start {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows = []
    for backend in args.backends:
        rows.append(run_backend(backend, args.epochs, shape))
        print(f"  {backend}: {rows[-1]}", flush=True)
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
