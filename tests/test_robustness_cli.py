"""The command line never shows a traceback for a user error: every sub-command, many bad inputs.

Each case runs ``tomoseg-nb`` with one mistake (missing / corrupt / wrong-dimension files, existing
outputs without ``--overwrite``, unknown formats, impossible numbers) and checks the contract: exit
status 2, exactly one ``tomoseg-nb <command>: error: ...`` line saying what was wrong, no
``Traceback``, and nothing written or changed in the output folder. The whole table runs in-process
through ``cli.main`` (what the console script calls); one case per sub-command also runs as a real
``tomoseg-nb`` process, including a disk that fills up mid-write.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tomoseg_nb.annotations import Project
from tomoseg_nb.cli import main
from tomoseg_nb.coords import Picks, write_picks
from tomoseg_nb.volume import write_volume

SHAPE = (12, 64, 64)


# ------------------------------------------------------------------------------------- inputs


def _keras_model(path: Path, sidecar: dict | None, *, lambda_layer: bool = False) -> Path:
    import keras

    from tomoseg_nb.models import build_model

    if lambda_layer:
        inputs = keras.Input((None, None, 1))
        hidden = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
        outputs = keras.layers.MaxPooling2D(2)(keras.layers.Conv2D(1, 3, padding="same")(hidden))
        model = keras.Model(inputs, outputs)
    else:
        model = build_model("tiny", seed=0)
    model.save(path)
    if sidecar is not None:
        path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path


def _boxer_model(path: Path) -> Path:
    """An untrained but complete boxer model folder (picking needs no trained weights to fail)."""
    from tomoseg_nb.boxer.model import BoxerInfo, BoxerModel, save_boxer
    from tomoseg_nb.boxer.networks import build_classifier, build_picker
    from tomoseg_nb.boxer.preprocess import BoxerRecipe
    from tomoseg_nb.boxer.references import context_size

    recipe = BoxerRecipe()
    side = context_size(recipe.working_box_px)
    model = BoxerModel(
        picker=build_picker(seed=0),
        classifier=build_classifier(recipe.working_box_px, seed=0),
        references=np.zeros((3, side, side), np.float32),
        info=BoxerInfo(box_px=40.0, pixel_size=10.0, recipe=recipe.to_dict()),
    )
    return save_boxer(model, path)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Good and bad inputs for every sub-command, made once."""
    from tomoseg_nb.models import ModelInfo
    from tomoseg_nb.preprocess import Recipe

    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    tomogram = rng.normal(size=SHAPE).astype(np.float32)
    paths = {
        "tomo": write_volume(d / "TS_01.mrc", tomogram, voxel_size=10.0),
        "narrow": write_volume(d / "narrow.mrc", tomogram[:, :48], voxel_size=10.0),
        "prob": write_volume(
            d / "TS_01__ribosome.mrc", rng.uniform(size=SHAPE).astype(np.float32), voxel_size=10.0
        ),
        "coarse": write_volume(
            d / "TS_01__membrane.mrc", rng.uniform(size=SHAPE).astype(np.float32), voxel_size=20.0
        ),
        "image": write_volume(d / "image.mrc", tomogram[0], voxel_size=10.0),
        "mic": write_volume(d / "mic.mrc", rng.normal(size=(256, 256)), voxel_size=10.0),
        "garbage": d / "garbage.mrc",
        "truncated": d / "truncated.mrc",
        "notes": d / "notes.txt",
        "nan": d / "nan.mrc",
        "labels": write_volume(d / "labels.mrc", np.zeros(SHAPE, np.uint8)),
    }
    paths["garbage"].write_bytes(b"this is not an MRC file\n" * 50)
    data = paths["tomo"].read_bytes()
    paths["truncated"].write_bytes(data[: len(data) // 2])
    paths["notes"].write_text("my notes\n")
    with_nan = tomogram.copy()
    with_nan[SHAPE[0] // 2, 3, 3] = np.nan
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mrcfile and header stats see the NaN
        write_volume(paths["nan"], with_nan)

    sidecar = ModelInfo(
        feature="membrane", arch="tiny", voxel_size=10.0, recipe=Recipe().to_dict()
    ).to_dict()
    paths["model"] = _keras_model(d / "membrane.keras", sidecar)
    paths["old_model"] = _keras_model(d / "old.keras", {**sidecar, "format_version": 7})
    paths["bare_model"] = _keras_model(d / "bare.keras", None)
    paths["escaping_model"] = _keras_model(d / "escape.keras", {**sidecar, "feature": "../up"})
    paths["lambda_model"] = _keras_model(d / "lambda.keras", sidecar, lambda_layer=True)
    paths["broken_model"] = d / "broken.keras"
    paths["broken_model"].write_bytes(b"PK\x03\x04 not really a zip")
    paths["broken_model"].with_suffix(".json").write_text(json.dumps(sidecar))

    with Project.create(d / "project", tomogram=paths["tomo"]) as project:
        project.add_feature("membrane", tile_size=16)  # and not one tile: empty annotations
    paths["project"] = d / "project"
    (d / "broken_project").mkdir()
    (d / "broken_project" / "project.json").write_text("{truncated")
    paths["broken_project"] = d / "broken_project"

    for kind, n in (("good", 6), ("background", 6), ("few", 2)):
        write_picks(d / f"{kind}.csv", Picks(rng.uniform(40, 216, (n, 2)), tomogram="mic"))
        paths[kind] = d / f"{kind}.csv"
    paths["bad_star"] = d / "bad.star"
    paths["bad_star"].write_text("data_\nloop_\n_rlnCoordinateX #1\nnot a number at all\n")
    paths["boxer"] = _boxer_model(d / "model.boxer")
    paths["lambda_boxer"] = d / "lambda.boxer"
    shutil.copytree(paths["boxer"], paths["lambda_boxer"])
    shutil.copy(paths["lambda_model"], paths["lambda_boxer"] / "picker.keras")
    return {key: str(value) for key, value in paths.items()}


# --------------------------------------------------------------------------------- the table

# id -> (argv with {placeholders}, what the error line must say, files to put in {out} first).
# {out} is a fresh, empty output folder per case; nothing may appear or change in it.
CASES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # lab
    "lab-missing-folder": ("lab --folder {out}/nowhere", "no notebook folder", ()),
    "lab-port-zero": ("lab --port 0", "--port: must be a whole number from 1 to 65535", ()),
    # demo
    "demo-unknown-arch": ("demo --out {out} --arch bogus", "unknown architecture 'bogus'", ()),
    "demo-zero-epochs": ("demo --out {out} --epochs 0", "--epochs: must be .* >= 1", ()),
    "demo-negative-seed": ("demo --out {out} --seed -1", "--seed: must be .* >= 0", ()),
    "demo-tiny-shape": ("demo --out {out} --shape 4 4 4", "at least 8 voxels", ()),
    "demo-existing-report": ("demo --out {out}", "report.md: output exists", ("report.md",)),
    # simulate
    "simulate-zero-size": ("simulate --out {out} --shape 0 64 64", "at least 8 voxels", ()),
    "simulate-absurd-size": (
        "simulate --out {out} --kind tomogram --shape 100000 100000 100000",
        "not enough memory",
        (),
    ),
    "simulate-negative-voxel": ("simulate --out {out} --voxel-size -1", "positive number", ()),
    "simulate-negative-seed": ("simulate --out {out} --seed -1", "--seed: must be", ()),
    "simulate-existing": (
        "simulate --out {out} --kind tomogram --shape 16 64 64",
        "tomogram.mrc: output exists",
        ("tomogram.mrc",),
    ),
    "simulate-under-a-file": (
        "simulate --out {out}/file.txt/sim --kind tomogram",
        "file.txt is a file, not a folder",
        ("file.txt",),
    ),
    # train
    "train-missing-project": (
        "train --project {out}/none --feature membrane --out {out}/m.keras",
        "no annotation project here",
        (),
    ),
    "train-corrupt-project": (
        "train --project {broken_project} --feature membrane --out {out}/m.keras",
        "not readable JSON",
        (),
    ),
    "train-empty-annotations": (
        "train --project {project} --feature membrane --out {out}/m.keras --arch tiny",
        "no positive tile",
        (),
    ),
    "train-unknown-feature": (
        "train --project {project} --feature ribosome --out {out}/m.keras",
        "no feature 'ribosome'",
        (),
    ),
    "train-not-keras": (
        "train --project {project} --feature membrane --out {out}/m.h5",
        "must end in .keras",
        (),
    ),
    "train-existing": (
        "train --project {project} --feature membrane --out {out}/m.keras",
        "m.keras: output exists",
        ("m.keras",),
    ),
    "train-zero-epochs": (
        "train --project {project} --feature membrane --out {out}/m.keras --epochs 0",
        "--epochs: must be",
        (),
    ),
    "train-zero-binning": (
        "train --project {project} --feature membrane --out {out}/m.keras --binning 0",
        "binning must be a positive integer",
        (),
    ),
    "train-unknown-arch": (
        "train --project {project} --feature membrane --out {out}/m.keras --arch huge",
        "unknown architecture",
        (),
    ),
    # segment
    "segment-missing-tomogram": (
        "segment {out}/none.mrc --model {model} --out {out}",
        "no such file",
        (),
    ),
    "segment-corrupt-tomogram": (
        "segment {garbage} --model {model} --out {out}",
        "not a readable MRC",
        (),
    ),
    "segment-truncated-tomogram": (
        "segment {truncated} --model {model} --out {out}",
        "not a readable MRC",
        (),
    ),
    "segment-unknown-format": (
        "segment {notes} --model {model} --out {out}",
        "unknown volume format",
        (),
    ),
    "segment-2d-tomogram": ("segment {image} --model {model} --out {out}", "3D tomogram", ()),
    "segment-nan-tomogram": ("segment {nan} --model {model} --out {out}", "NaN/Inf", ()),
    "segment-missing-model": (
        "segment {tomo} --model {out}/none.keras --out {out}",
        "no such model file",
        (),
    ),
    "segment-corrupt-model": (
        "segment {tomo} --model {broken_model} --out {out}",
        "not a loadable Keras model",
        (),
    ),
    "segment-model-of-another-version": (
        "segment {tomo} --model {old_model} --out {out}",
        "format version 7",
        (),
    ),
    "segment-model-without-sidecar": (
        "segment {tomo} --model {bare_model} --out {out}",
        "sidecar bare.json is missing",
        (),
    ),
    "segment-model-with-code": (
        "segment {tomo} --model {lambda_model} --out {out}",
        "Lambda layer or custom code, which is refused",
        (),
    ),
    "segment-escaping-feature-name": (
        "segment {tomo} --model {escaping_model} --out {out}",
        "feature name '../up' is not allowed",
        (),
    ),
    "segment-boxer-model": ("segment {tomo} --model {boxer} --out {out}", "is a folder", ()),
    "segment-same-feature-twice": (
        "segment {tomo} --model {model} --model {model} --out {out}",
        "same feature",
        (),
    ),
    "segment-zero-slab": (
        "segment {tomo} --model {model} --out {out} --slab 0",
        "at least 1",
        (),
    ),
    "segment-existing": (
        "segment {tomo} --model {model} --out {out}",
        "TS_01__membrane.mrc: output exists",
        ("TS_01__membrane.mrc",),
    ),
    "segment-out-is-a-file": (
        "segment {tomo} --model {model} --out {out}/file.txt",
        "is a file, not a folder",
        ("file.txt",),
    ),
    "segment-bad-cluster": (
        "segment {tomo} --model {model} --out {out} --cluster bogus",
        "--cluster 'bogus'",
        (),
    ),
    # merge
    "merge-missing": ("merge {out}/none.mrc --out {out}/l.mrc", "no such file", ()),
    "merge-corrupt": ("merge {garbage} --out {out}/l.mrc", "not a readable MRC", ()),
    "merge-2d": ("merge {image} --out {out}/l.mrc", "3D tomogram", ()),
    "merge-nan": ("merge {nan} --out {out}/l.mrc", "NaN/Inf", ()),
    "merge-negative-threshold": (
        "merge {prob} --threshold -1 --out {out}/l.mrc",
        "thresholds are probabilities",
        (),
    ),
    "merge-bad-thresholds": (
        "merge {prob} --thresholds a,b --out {out}/l.mrc",
        "expected numbers",
        (),
    ),
    "merge-shape-mismatch": ("merge {prob} {narrow} --out {out}/l.mrc", "shape", ()),
    "merge-voxel-size-mismatch": ("merge {prob} {coarse} --out {out}/l.mrc", "voxel size", ()),
    "merge-zero-slab": ("merge {prob} --slab 0 --out {out}/l.mrc", "at least 1", ()),
    "merge-not-mrc": ("merge {prob} --out {out}/l.tif", "use a .mrc suffix", ()),
    "merge-bad-rule": (
        "merge {prob} --avoid ribosome:membrane --out {out}/l.mrc",
        "TARGET:PARTNER:RADIUS",
        (),
    ),
    "merge-existing": ("merge {prob} --out {out}/l.mrc", "l.mrc: output exists", ("l.mrc",)),
    # pick
    "pick-missing": (
        "pick {out}/none.mrc --threshold 0.5 --min-distance 3 --out {out}/p.csv",
        "no such file",
        (),
    ),
    "pick-corrupt": (
        "pick {truncated} --threshold 0.5 --min-distance 3 --out {out}/p.csv",
        "not a readable MRC",
        (),
    ),
    "pick-2d": (
        "pick {image} --threshold 0.5 --min-distance 3 --out {out}/p.csv",
        "3D tomogram",
        (),
    ),
    "pick-nan": ("pick {nan} --threshold 0.5 --min-distance 3 --out {out}/p.csv", "NaN/Inf", ()),
    "pick-negative-threshold": (
        "pick {prob} --threshold -0.5 --min-distance 3 --out {out}/p.csv",
        "threshold must be >= 0",
        (),
    ),
    "pick-nan-threshold": (
        "pick {prob} --threshold nan --min-distance 3 --out {out}/p.csv",
        "threshold must be a finite number",
        (),
    ),
    "pick-negative-distance": (
        "pick {prob} --threshold 0.5 --min-distance -3 --out {out}/p.csv",
        "minimum distance must be >= 0",
        (),
    ),
    "pick-zero-diameter": (
        "pick {prob} --threshold 0.5 --diameter 0 --out {out}/p.csv",
        "particle diameter must be a positive number of Angstrom",
        (),
    ),
    "pick-negative-mass": (
        "pick {prob} --threshold 0.5 --min-distance 3 --min-mass -5 --out {out}/p.csv",
        "minimum mass must be >= 0",
        (),
    ),
    "pick-negative-size": (
        "pick {prob} --threshold 0.5 --min-distance 3 --min-size -5 --out {out}/p.csv",
        "size limits",
        (),
    ),
    "pick-negative-edge": (
        "pick {prob} --threshold 0.5 --min-distance 3 --edge -1 --out {out}/p.csv",
        "edge margins",
        (),
    ),
    "pick-zero-binning": (
        "pick {prob} --threshold 0.5 --min-distance 3 --binning 0 --out {out}/p.csv",
        "binning must be positive",
        (),
    ),
    "pick-zero-voxel-size": (
        "pick {prob} --threshold 0.5 --min-distance 3 --voxel-size 0 --out {out}/p.csv",
        "voxel size must be positive",
        (),
    ),
    "pick-zero-spacing": (
        "pick {prob} --threshold 0.5 --mode filament --spacing 0 --out {out}/p.csv",
        "spacing must be a positive",
        (),
    ),
    "pick-unknown-format": (
        "pick {prob} --threshold 0.5 --min-distance 3 --format bogus --out {out}/p.csv",
        "unknown picks format 'bogus'",
        (),
    ),
    "pick-unknown-suffix": (
        "pick {prob} --threshold 0.9 --min-distance 3 --out {out}/p.xyz",
        "cannot tell the picks format",
        (),
    ),
    "pick-unknown-mode": (
        "pick {prob} --threshold 0.5 --min-distance 3 --mode bogus --out {out}/p.csv",
        "unknown mode 'bogus'",
        (),
    ),
    "pick-corrupt-tomogram": (
        "pick {prob} --threshold 0.5 --min-distance 3 --tomogram {garbage} --out {out}/p.csv",
        "not a readable MRC",
        (),
    ),
    "pick-existing": (
        "pick {prob} --threshold 0.5 --min-distance 3 --out {out}/p.csv",
        "p.csv: output exists",
        ("p.csv",),
    ),
    # mesh
    "mesh-missing": ("mesh {out}/none.mrc --out {out}/m.obj", "no such file", ()),
    "mesh-corrupt": ("mesh {garbage} --out {out}/m.obj", "not a readable MRC", ()),
    "mesh-zero-step": ("mesh {prob} --step 0 --out {out}/m.obj", "step_size >= 1", ()),
    "mesh-nan-threshold": ("mesh {prob} --threshold nan --out {out}/m.obj", "finite", ()),
    "mesh-unknown-format": ("mesh {prob} --out {out}/m.xyz", "unknown mesh format", ()),
    "mesh-unknown-label": ("mesh {prob} --label bogus --out {out}/m.obj", "label name map", ()),
    "mesh-existing": ("mesh {prob} --out {out}/m.obj", "m.obj: output exists", ("m.obj",)),
    # evaluate
    "evaluate-missing-tomogram": (
        "evaluate --tomogram {out}/none.mrc --truth {labels} --feature m=1 --json {out}/s.json",
        "no such file",
        (),
    ),
    "evaluate-truth-shape": (
        "evaluate --tomogram {tomo} --truth {narrow} --feature m=1 --json {out}/s.json",
        "shape",
        (),
    ),
    "evaluate-feature-syntax": (
        "evaluate --tomogram {tomo} --truth {labels} --feature m:1 --json {out}/s.json",
        "expected NAME=ID",
        (),
    ),
    "evaluate-escaping-feature": (
        "evaluate --tomogram {tomo} --truth {labels} --feature ../m=1 --json {out}/s.json",
        "feature name '../m' is not allowed",
        (),
    ),
    "evaluate-absent-feature": (
        "evaluate --tomogram {tomo} --truth {labels} --feature m=1 --json {out}/s.json "
        "--tile-size 16",
        "no positive tile",
        (),
    ),
    "evaluate-zero-tile": (
        "evaluate --tomogram {tomo} --truth {labels} --feature m=1 --json {out}/s.json "
        "--tile-size 0",
        "--tile-size: must be",
        (),
    ),
    "evaluate-huge-tile": (
        "evaluate --tomogram {tomo} --truth {labels} --feature m=1 --json {out}/s.json "
        "--tile-size 100000",
        "tile size",
        (),
    ),
    "evaluate-zero-positives": (
        "evaluate --tomogram {tomo} --truth {labels} --feature m=1 --json {out}/s.json --n-pos 0",
        "--n-pos: must be",
        (),
    ),
    "evaluate-unknown-arch": (
        "evaluate --tomogram {tomo} --truth {labels} --feature m=1 --json {out}/s.json "
        "--arch huge --keep {out}",
        "unknown architecture",
        (),
    ),
    "evaluate-existing-json": (
        "evaluate --tomogram {tomo} --truth {labels} --feature m=1 --json {out}/s.json",
        "s.json: output exists",
        ("s.json",),
    ),
    "evaluate-existing-kept-model": (
        "evaluate --tomogram {tomo} --truth {labels} --feature m=1 --json {out}/s.json "
        "--keep {out}",
        "m.keras: output exists",
        ("m.keras",),
    ),
    # boxer train
    "boxer-train-missing-micrograph": (
        "boxer train --micrographs {out}/none.mrc --good {good} --background {background} "
        "--box 40 --out {out}/b",
        "no such file",
        (),
    ),
    "boxer-train-corrupt-micrograph": (
        "boxer train --micrographs {garbage} --good {good} --background {background} "
        "--box 40 --out {out}/b",
        "not a readable MRC",
        (),
    ),
    "boxer-train-3d-micrograph": (
        "boxer train --micrographs {tomo} --good {good} --background {background} "
        "--box 40 --out {out}/b",
        "2D micrograph is needed",
        (),
    ),
    "boxer-train-zero-box": (
        "boxer train --micrographs {mic} --good {good} --background {background} "
        "--box 0 --out {out}/b",
        "box size must be positive",
        (),
    ),
    "boxer-train-huge-box": (
        "boxer train --micrographs {mic} --good {good} --background {background} "
        "--box 1e9 --out {out}/b",
        "cannot be picked in a 256 x 256 px micrograph",
        (),
    ),
    "boxer-train-tiny-box": (
        "boxer train --micrographs {mic} --good {good} --background {background} "
        "--box 2 --out {out}/b",
        "cannot be picked",
        (),
    ),
    "boxer-train-zero-epochs": (
        "boxer train --micrographs {mic} --good {good} --background {background} "
        "--box 40 --epochs 0 --out {out}/b",
        "--epochs: must be",
        (),
    ),
    "boxer-train-negative-seed": (
        "boxer train --micrographs {mic} --good {good} --background {background} "
        "--box 40 --seed -1 --out {out}/b",
        "--seed: must be",
        (),
    ),
    "boxer-train-too-few": (
        "boxer train --micrographs {mic} --good {few} --background {background} "
        "--box 40 --out {out}/b",
        "good reference",
        (),
    ),
    "boxer-train-corrupt-coordinates": (
        "boxer train --micrographs {mic} --good {bad_star} --background {background} "
        "--box 40 --out {out}/b",
        "bad.star",
        (),
    ),
    "boxer-train-unknown-coordinates": (
        "boxer train --micrographs {mic} --good {garbage} --background {background} "
        "--box 40 --out {out}/b",
        "cannot tell the picks format",
        (),
    ),
    "boxer-train-file-count": (
        "boxer train --micrographs {mic} --good {good} {good} --background {background} "
        "--box 40 --out {out}/b",
        "coordinate file",
        (),
    ),
    "boxer-train-existing": (
        "boxer train --micrographs {mic} --good {good} --background {background} "
        "--box 40 --out {out}/b",
        "output exists",
        ("b",),
    ),
    # boxer pick
    "boxer-pick-missing-model": (
        "boxer pick {mic} --model {out}/none --out {out}",
        "no such boxer model",
        (),
    ),
    "boxer-pick-segmentation-model": (
        "boxer pick {mic} --model {model} --out {out}",
        "not a boxer model",
        (),
    ),
    "boxer-pick-model-with-code": (
        "boxer pick {mic} --model {lambda_boxer} --out {out}",
        "Lambda layer or custom code",
        (),
    ),
    "boxer-pick-corrupt-micrograph": (
        "boxer pick {garbage} --model {boxer} --out {out}",
        "not a readable MRC",
        (),
    ),
    "boxer-pick-3d-micrograph": (
        "boxer pick {tomo} --model {boxer} --out {out}",
        "2D micrograph is needed",
        (),
    ),
    "boxer-pick-nan-threshold": (
        "boxer pick {mic} --model {boxer} --out {out} --threshold nan",
        "picker threshold nan must be a finite number",
        (),
    ),
    "boxer-pick-classifier-threshold": (
        "boxer pick {mic} --model {boxer} --out {out} --classifier-threshold 5",
        "within 0-1",
        (),
    ),
    "boxer-pick-zero-pixel-size": (
        "boxer pick {mic} --model {boxer} --out {out} --pixel-size 0",
        "must be positive",
        (),
    ),
    "boxer-pick-absurd-pixel-size": (
        "boxer pick {mic} --model {boxer} --out {out} --pixel-size 1e-9",
        "cannot be picked",
        (),
    ),
    "boxer-pick-unknown-format": (
        "boxer pick {mic} --model {boxer} --out {out} --format bogus",
        "--format: invalid choice",
        (),
    ),
    "boxer-pick-existing": (
        "boxer pick {mic} --model {boxer} --out {out}",
        "mic.star: output exists",
        ("mic.star",),
    ),
}


def _argv(template: str, files: dict[str, str], out: Path) -> list[str]:
    return [word.format(out=out, **files) for word in template.split()]


def _command(argv: list[str]) -> str:
    return " ".join(argv[:2]) if argv[0] == "boxer" else argv[0]


def _prepare(out: Path, existing: tuple[str, ...]) -> dict[str, str]:
    """Make the output folder with the named outputs already there; return its contents."""
    out.mkdir()
    for name in existing:
        (out / name).write_text("an earlier result\n")
    return _snapshot(out)


def _snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` (hidden temporaries too) with a hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else ""
        for p in sorted(folder.rglob("*"))
    }


def assert_one_line_error(stderr: str, command: str, expected: str) -> None:
    """Exactly one ``tomoseg-nb COMMAND: error: ...`` line, matching ``expected``; no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1, stderr
    assert errors[0].startswith(f"tomoseg-nb {command}: error: "), stderr
    assert re.search(expected, errors[0]), (expected, errors[0])
    assert lines[-1] == errors[0], stderr
    for line in lines[:-1]:  # argparse's usage lines, or our one-line warnings
        assert line.startswith(("usage:", " ", f"tomoseg-nb {command}: warning: ")), stderr


@pytest.fixture(autouse=True)
def no_jupyter(monkeypatch):
    """``lab`` replaces the process with JupyterLab once its checks pass; never this one."""

    def refuse(*args):
        raise AssertionError(f"lab would have started JupyterLab: {args}")

    monkeypatch.setattr(os, "execv", refuse)


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_errors_give_one_line_and_exit_status_2(case, files, tmp_path, capsys):
    template, expected, existing = CASES[case]
    out = tmp_path / "out"
    before = _prepare(out, existing)
    argv = _argv(template, files, out)
    try:
        status = main(argv)
    except SystemExit as stop:  # argparse refuses malformed options itself
        status = stop.code
    assert status == 2
    assert_one_line_error(capsys.readouterr().err, _command(argv), expected)
    assert _snapshot(out) == before  # nothing written, nothing replaced, no temporaries


def test_every_sub_command_is_in_the_table():
    import argparse

    from tomoseg_nb.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    tested = {_command(template.split()) for template, _, _ in CASES.values()}
    expected = {name for name in commands if name != "boxer"} | {"boxer train", "boxer pick"}
    assert tested == expected


# -------------------------------------------------------------------- as real processes


def _user_environment() -> dict[str, str]:
    """This process's environment without the tests' log settings: what a user's shell has."""
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return {**environment, "TOMOSEG_NB_PROGRESS": "0"}


def _console_script() -> list[str]:
    script = Path(sys.executable).with_name("tomoseg-nb")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tomoseg_nb"]


# One library-level mistake per sub-command (the table above holds the rest).
PROCESS_CASES = [
    "lab-missing-folder",
    "demo-existing-report",
    "simulate-absurd-size",
    "train-empty-annotations",
    "segment-model-of-another-version",
    "merge-voxel-size-mismatch",
    "pick-negative-threshold",
    "mesh-corrupt",
    "evaluate-escaping-feature",
    "boxer-train-huge-box",
    "boxer-pick-model-with-code",
]


def _full_disk(limit_bytes: int):
    """``preexec_fn``: writes past ``limit_bytes`` fail with EFBIG, as on a disk that is full.

    RLIMIT_FSIZE holds for root too, and the failure comes from the kernel in the middle of the
    real write, so it is a faithful stand-in for ENOSPC that needs no special file system.
    """

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return limit


@pytest.fixture(scope="module")
def processes(files, tmp_path_factory):
    """Run every process case at once (the interpreter start-ups overlap), then collect them."""
    root = tmp_path_factory.mktemp("processes")
    environment = _user_environment()
    running = {}
    for case in [*PROCESS_CASES, "full-disk"]:
        out = root / case
        if case == "full-disk":
            argv = [
                "simulate",
                "--out",
                str(out),
                "--kind",
                "tomogram",
                "--shape",
                "16",
                "96",
                "96",
            ]
            before, preexec = _prepare(out, ()), _full_disk(64 * 1024)
        else:
            template, _, existing = CASES[case]
            argv = _argv(template, files, out)
            before, preexec = _prepare(out, existing), None
        child = subprocess.Popen(
            _console_script() + argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
            preexec_fn=preexec,
        )
        running[case] = (child, argv, out, before)
    results = {}
    for case, (child, argv, out, before) in running.items():
        stdout, stderr = child.communicate(timeout=300)
        results[case] = (child.returncode, stdout, stderr, argv, out, before)
    return results


@pytest.mark.parametrize("case", PROCESS_CASES)
def test_the_console_script_shows_no_traceback(case, processes):
    status, stdout, stderr, argv, out, before = processes[case]
    assert status == 2, stderr
    assert "Traceback" not in stdout
    assert_one_line_error(stderr, _command(argv), CASES[case][1])
    assert _snapshot(out) == before


def test_a_disk_filling_up_mid_write_is_one_line_and_leaves_no_partial_file(processes):
    status, _, stderr, _, out, _ = processes["full-disk"]
    assert status == 2, stderr
    assert_one_line_error(stderr, "simulate", "File too large; free some space")
    # The 590 kB tomogram could not be written: it is absent, and so is its temporary. Smaller
    # files written before it are complete (each was renamed into place only once whole).
    names = [p.name for p in out.iterdir()]
    assert "tomogram.mrc" not in names
    assert not [name for name in names if name.startswith(".")], names
    for name in names:
        if name.endswith(".json"):
            json.loads((out / name).read_text())


# What a user error costs: one line, before Keras (seconds to load) is imported.
IMPORTS_AFTER = (
    "import sys\n"
    "from tomoseg_nb.cli import main\n"
    "status = main(sys.argv[1:])\n"
    "print(sorted({'keras', 'tensorflow'} & set(sys.modules)))\n"
    "sys.exit(status)\n"
)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["segment", "notes.txt", "--model", "m.keras", "--out", "o"], "m.keras: no such model"),
        (["segment", "notes.txt", "--model", "m.keras", "--out", "o", "--verbose"], "m.keras"),
        (["--verbose", "segment", "tomo.mrc", "--model", "notes.txt", "--out", "o"], "notes.txt"),
        (["segment", "tomo.mrc", "--model", "good.keras", "--out", "o"], "output exists"),
        (["segment", "notes.txt", "--model", "good.keras", "--out", "o"], "unknown volume"),
        (
            [
                "evaluate",
                "--tomogram",
                "tomo.mrc",
                "--truth",
                "tomo.mrc",
                "--feature",
                "a=1",
                "--arch",
                "fastt",
                "--json",
                "s.json",
            ],
            "unknown architecture 'fastt'",
        ),
    ],
    ids=[
        "missing-model",
        "verbose-after",
        "verbose-before",
        "existing-map",
        "not-a-tomogram",
        "evaluate-unknown-arch",
    ],
)
def test_a_user_error_is_one_stderr_line_before_keras_is_imported(argv, expected, files, tmp_path):
    (tmp_path / "notes.txt").write_text("not a tomogram\n")
    write_volume(tmp_path / "tomo.mrc", np.zeros(SHAPE, np.float32), voxel_size=10.0)
    shutil.copy(files["model"], tmp_path / "good.keras")
    shutil.copy(Path(files["model"]).with_suffix(".json"), tmp_path / "good.json")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "tomo__membrane.mrc").write_text("an earlier map\n")
    before = _snapshot(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS_AFTER, *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_user_environment(),
        timeout=120,
    )
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"tomoseg-nb {argv[argv[0] == '--verbose']}: error: ")
    assert expected in result.stderr
    assert result.stdout == "[]\n"  # neither Keras nor TensorFlow was loaded
    assert _snapshot(tmp_path) == before
