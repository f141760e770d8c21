"""Peak memory and speed of ``tomoseg-nb segment`` on a large tomogram, streamed from disk.

Writes a 128 x 1024 x 1024 float32 tomogram (512 MB), saves an untrained EMAN2-architecture network
(weights do not change the cost), and runs ``tomoseg-nb segment`` in a child process so its peak
resident memory (``ru_maxrss``, what ``/usr/bin/time -v`` reports as "Maximum resident set size")
is measured alone. The baseline is the size of the tomogram: the ratio shows memory stays bounded
by a few slabs, not by the volume.

    .venv/bin/python benchmarks/bench_segment.py [--shape 128 1024 1024] [--engine fft]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_tomogram(path: Path, shape: tuple[int, int, int]) -> None:
    from tomoseg_nb.volume import create_volume

    rng = np.random.default_rng(0)
    with create_volume(path, shape, np.float32, voxel_size=10.0) as data:
        for z in range(shape[0]):
            data[z] = rng.standard_normal(shape[1:], dtype=np.float32)


def save_network(path: Path) -> None:
    from tomoseg_nb.models import ModelInfo, build_model, save_model
    from tomoseg_nb.preprocess import Recipe

    info = ModelInfo(feature="membrane", arch="eman2", voxel_size=10.0, recipe=Recipe().to_dict())
    save_model(build_model("eman2", seed=0), info, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(128, 1024, 1024))
    parser.add_argument("--engine", default="fft", choices=("auto", "keras", "fft"))
    parser.add_argument("--slab", type=int, default=4)
    args = parser.parse_args()
    shape = tuple(args.shape)
    with tempfile.TemporaryDirectory(prefix="bench-segment-") as scratch:
        folder = Path(scratch)
        tomogram, model = folder / "big.mrc", folder / "membrane.keras"
        write_tomogram(tomogram, shape)
        save_network(model)
        command = [
            sys.executable, "-m", "tomoseg_nb", "segment", str(tomogram), "--model", str(model),
            "--out", str(folder / "maps"), "--engine", args.engine, "--slab", str(args.slab),
        ]  # fmt: skip
        environment = {**os.environ, "TOMOSEG_NB_PROGRESS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
        start = time.perf_counter()
        subprocess.run(command, check=True, env=environment, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        peak_bytes = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    tomogram_bytes = int(np.prod(shape)) * 4
    print(
        f"tomogram {shape[0]} x {shape[1]} x {shape[2]} float32: {tomogram_bytes / 2**30:.2f} GiB"
    )
    print(f"segment --engine {args.engine} --slab {args.slab}: {seconds:.1f} s (including start-up), "
          f"{np.prod(shape) / seconds / 1e6:.2f} Mvoxel/s")  # fmt: skip
    print(f"peak resident memory of the segment process: {peak_bytes / 2**30:.2f} GiB")
    print(f"ratio peak memory / tomogram size: {peak_bytes / tomogram_bytes:.2f}")


if __name__ == "__main__":
    main()
