"""Benchmark the FFT engine against Keras direct convolution on the EMAN2 network.

Measures, in one run and interleaved so both see the same machine load:

* application: voxels/s of ``model.predict`` (Keras direct convolution, whole slices) and of
  ``engine.predict_slices(engine="fft")`` on a 512 x 512 x 32 volume, and their agreement;
* training: seconds per epoch of 1,100 64 x 64 tiles, batch 20, Adam 1e-4, the EMAN2 loss, with
  ``model.fit`` on the Conv2D model and on its ``as_fft_model`` twin. Keras direct training is
  timed on a fraction of the epoch and extrapolated (printed as such).

``--crossover`` instead times both engines on small networks of growing kernel size, to place
``engine.choose.FFT_MIN_KERNEL_CPU``.

The machine is shared, so besides wall-clock rates the CPU seconds of each engine are printed:
their ratio is the engines' relative efficiency whatever else runs.

Run: ``.venv/bin/python benchmarks/bench_engine.py`` (about 5 minutes on 2 cores;
``--no-training`` for the application part only).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TOMOSEG_NB_PROGRESS", "0")

import keras
import numpy as np

from tomoseg_nb.engine import as_fft_model, predict_slices
from tomoseg_nb.models import build_model, eman2_loss

TILES = 1100
BATCH = 20


def _volume(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Preprocessed-like slices: smooth noise, unit variance, clamped at 3 sigma, divided by 3."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    volume = ndimage.gaussian_filter(rng.normal(size=shape), (0, 1.5, 1.5)).astype(np.float32)
    volume /= volume.std()
    return np.clip(volume, -3, 3) / 3


def bench_application(model: keras.Model, slices: int, chunk: int) -> None:
    volume = _volume((slices, 512, 512))
    model.predict(volume[:1, ..., None], verbose=0)  # trace / warm up both engines
    predict_slices(model, volume[:chunk], engine="fft")
    keras_s = fft_s = keras_cpu = fft_cpu = 0.0
    worst = 0.0
    for start in range(0, slices, chunk):
        part = volume[start : start + chunk]
        t, c = time.perf_counter(), time.process_time()
        direct = model.predict(part[..., None], batch_size=4, verbose=0)[..., 0]
        keras_s += time.perf_counter() - t
        keras_cpu += time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        (fft,) = predict_slices(model, part, engine="fft")
        fft_s += time.perf_counter() - t
        fft_cpu += time.process_time() - c
        worst = max(worst, float(np.abs(fft - direct).max() / np.abs(direct).max()))
    voxels = volume.size
    print(f"application, EMAN2 network, {slices} x 512 x 512 voxels")
    print(
        f"  keras direct : {voxels / keras_s / 1e6:7.3f} Mvoxel/s ({keras_s:6.1f} s, cpu {keras_cpu:6.1f} s)"
    )
    print(
        f"  fft engine   : {voxels / fft_s / 1e6:7.3f} Mvoxel/s ({fft_s:6.1f} s, cpu {fft_cpu:6.1f} s)"
    )
    print(f"  ratio fft / keras: {keras_s / fft_s:.1f}x (cpu time: {keras_cpu / fft_cpu:.1f}x)")
    print(f"  max |fft - keras| / max |keras|: {worst:.1e}")


def _fit_seconds(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    t = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    return time.perf_counter() - t


def bench_training(keras_batches: int) -> None:
    rng = np.random.default_rng(1)
    x = _volume((TILES, 64, 64), seed=1)[..., None]
    y = (rng.random((TILES, 32, 32, 1)) < 0.3).astype(np.float32)
    direct = build_model("eman2", seed=0)
    twin = as_fft_model(build_model("eman2", seed=0))
    for model in (direct, twin):
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=eman2_loss)
        model.fit(x[: 2 * BATCH], y[: 2 * BATCH], batch_size=BATCH, epochs=1, verbose=0)
    steps = TILES // BATCH
    # interleave: a slice of Keras batches, a slice of the FFT epoch, and so on
    keras_s = fft_s = 0.0
    pieces = 4
    per_piece = TILES // pieces // BATCH * BATCH
    keras_piece = max(1, keras_batches // pieces) * BATCH
    for piece in range(pieces):
        lo = piece * per_piece
        keras_s += _fit_seconds(direct, x[lo : lo + keras_piece], y[lo : lo + keras_piece])
        hi = TILES if piece == pieces - 1 else lo + per_piece
        fft_s += _fit_seconds(twin, x[lo:hi], y[lo:hi])
    keras_timed = pieces * keras_piece // BATCH
    keras_epoch = keras_s / keras_timed * steps
    print(f"training, EMAN2 network, {TILES} tiles of 64 x 64, batch {BATCH} ({steps} steps/epoch)")
    print(
        f"  keras direct : {keras_epoch:7.1f} s/epoch (extrapolated from {keras_timed} of "
        f"{steps} steps: {keras_s:.1f} s)"
    )
    print(f"  fft twin     : {fft_s:7.1f} s/epoch (whole epoch timed)")
    print(f"  ratio fft / keras: {keras_epoch / fft_s:.1f}x")


def bench_crossover() -> None:
    """Apply and train 3-layer nets of kernel k (16 channels) with both engines."""
    from keras import layers

    volume = _volume((4, 512, 512))
    rng = np.random.default_rng(2)
    x = _volume((200, 64, 64), seed=3)[..., None]
    y = (rng.random((200, 32, 32, 1)) < 0.3).astype(np.float32)
    print("kernel  apply keras/fft  train keras/fft  (ratios > 1: fft faster)")
    for k in (3, 5, 7, 9, 11, 15):
        model = keras.Sequential(
            [
                keras.Input((None, None, 1)),
                layers.Conv2D(16, k, padding="same", activation="relu"),
                layers.MaxPooling2D(2),
                layers.Conv2D(16, k, padding="same", activation="relu"),
                layers.Conv2D(1, k, padding="same"),
            ]
        )
        model.predict(volume[:1, ..., None], verbose=0)
        predict_slices(model, volume[:1], engine="fft")
        t = time.perf_counter()
        model.predict(volume[..., None], batch_size=4, verbose=0)
        keras_apply = time.perf_counter() - t
        t = time.perf_counter()
        predict_slices(model, volume, engine="fft")
        fft_apply = time.perf_counter() - t
        twin = as_fft_model(model)
        train = []
        for candidate in (model, twin):
            candidate.compile(optimizer=keras.optimizers.Adam(1e-4), loss=eman2_loss)
            candidate.fit(x[:40], y[:40], batch_size=BATCH, epochs=1, verbose=0)
            train.append(_fit_seconds(candidate, x, y))
        print(f"{k:6d}  {keras_apply / fft_apply:15.2f}  {train[0] / train[1]:15.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=32, help="volume depth (default 32)")
    parser.add_argument(
        "--keras-batches", type=int, default=12, help="Keras training batches timed (default 12)"
    )
    parser.add_argument("--crossover", action="store_true", help="kernel-size crossover instead")
    parser.add_argument("--no-training", action="store_true", help="application only")
    args = parser.parse_args()
    print(f"keras {keras.__version__} ({keras.backend.backend()}), {os.cpu_count()} CPU cores")
    if args.crossover:
        bench_crossover()
        return
    model = build_model("eman2", seed=0)
    bench_application(model, args.slices, chunk=8)
    if not args.no_training:
        bench_training(args.keras_batches)


if __name__ == "__main__":
    main()
