"""What the phantom-suite benchmarks share: their options, and the loop over one half of the suite.

``bench_accuracy`` and ``bench_rounds`` differ only in what they do with each phantom and how they
summarise; the options, progress lines and the JSON written after every phantom (so a long run
keeps what it measured) live here once.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tomoseg_nb.atomic import write_json_atomic
from tomoseg_nb.errors import BadInputError
from tomoseg_nb.preprocess import Recipe
from tomoseg_nb.synthetic.suite import DEFAULT_SHAPE, HALVES, PhantomSpec
from tomoseg_nb.training_config import DEFAULT_TRAINING, TrainingConfig


def add_suite_arguments(parser: argparse.ArgumentParser) -> None:
    """``--half --shape --phantoms --only --n-positive --n-negative --json --resume``."""
    parser.add_argument("--half", choices=sorted(HALVES), default="development")
    parser.add_argument(
        "--shape",
        type=int,
        nargs=3,
        default=list(DEFAULT_SHAPE),
        metavar=("Z", "Y", "X"),
        help="largest phantom shape; z shrinks to a thinner slab's thickness",
    )
    parser.add_argument("--phantoms", type=int, help="only the first N phantoms of the half")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="only the phantoms of the half whose names start so (e.g. s1106): a first look",
    )
    parser.add_argument("--n-positive", type=int, default=10)
    parser.add_argument("--n-negative", type=int, default=100)
    parser.add_argument("--json", type=Path, help="write every score and the summary here")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the phantoms already measured in --json by a run with the same options (and "
        "the same code: it is not checked) and measure only the rest",
    )


def suite_setup(args: argparse.Namespace) -> dict[str, Any]:
    """The suite options of a run, as recorded in its JSON."""
    setup = {
        "half": args.half,
        "max_shape": list(args.shape),
        "n_positive": args.n_positive,
        "n_negative": args.n_negative,
    }
    if args.only:
        setup["only"] = list(args.only)
    return setup


RECIPE_PREFIX = "recipe."
"""``--set recipe.NAME=VALUE`` changes a setting of the config's preprocessing ``Recipe``."""


def add_settings_argument(parser: argparse.ArgumentParser) -> None:
    """``--set NAME=VALUE`` (repeatable): a ``TrainingConfig`` setting of every network."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change a TrainingConfig setting of every network, e.g. epochs=40, or of its "
        "preprocessing recipe, e.g. recipe.lowpass=0 (repeatable; a candidate's first look)",
    )


def training_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--set`` settings, refused before any phantom is built if a config would refuse them.

    Returned as given (``{"recipe.lowpass": 0.0}``), so they are recorded in a run's JSON as typed;
    ``apply_settings`` makes them a config."""
    settings = dict(parse_literal_option("--set", text) for text in args.set)
    try:
        apply_settings(DEFAULT_TRAINING, settings)
    except BadInputError as error:
        raise SystemExit(f"--set: {error}") from None
    return settings


def apply_settings(config: TrainingConfig, settings: dict[str, Any]) -> TrainingConfig:
    """``config`` with the ``--set`` settings; ``recipe.NAME`` ones change its recipe."""
    plain = {k: v for k, v in settings.items() if not k.startswith(RECIPE_PREFIX)}
    recipe = {
        k[len(RECIPE_PREFIX) :]: v for k, v in settings.items() if k.startswith(RECIPE_PREFIX)
    }
    if recipe:
        plain["recipe"] = Recipe.from_dict({**config.recipe.to_dict(), **recipe})
    return config.replace(**plain)


def parse_literal_option(flag: str, text: str) -> tuple[str, Any]:
    """``"name=value"`` -> ``(name, value)``, the value read as a Python literal (1000, 0.1, ...);
    a name may be dotted (``recipe.lowpass``)."""
    name, sep, value = text.partition("=")
    if not sep or not all(part.isidentifier() for part in name.split(".")):
        raise SystemExit(f"{flag} {text!r}: expected NAME=VALUE, e.g. epochs=40")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise SystemExit(f"{flag} {text!r}: {value!r} is not a number, tuple or bool") from None


def run_over_suite(
    name: str,
    args: argparse.Namespace,
    setup: dict[str, Any],
    run_phantom: Callable[[PhantomSpec, tuple[int, int, int]], dict[str, Any]],
    summarise: Callable[[list[dict[str, Any]]], dict[str, Any]],
) -> tuple[list[dict[str, Any]], float]:
    """Run ``run_phantom(spec, shape)`` on each phantom of the chosen half; (results, seconds)."""
    specs = HALVES[args.half][: args.phantoms]
    if args.only:
        specs = tuple(spec for spec in specs if spec.name.startswith(tuple(args.only)))
        if not specs:
            raise SystemExit(f"--only {' '.join(args.only)}: no phantom of the {args.half} half")
    shape = (args.shape[0], args.shape[1], args.shape[2])
    print(f"{name}: {len(specs)} phantom(s), {setup}", flush=True)
    print(f"machine: {machine()}", flush=True)
    phantoms = measured_before(args, setup, {spec.name for spec in specs})
    done = {phantom["spec"]["name"] for phantom in phantoms}
    start = time.perf_counter()
    for spec in specs:
        if spec.name in done:
            continue
        print(f"{spec.name} ({time.perf_counter() - start:.0f} s)", flush=True)
        # train seconds are only comparable on one machine and backend (a resumed run may span
        # several): each phantom records where it ran
        phantoms.append({**run_phantom(spec, shape), "machine": machine()})
        if args.json is not None:  # after each phantom, so a long run leaves what it measured
            record = {"setup": setup, "summary": summarise(phantoms), "phantoms": phantoms}
            write_json_atomic(args.json, record, overwrite=True)
    seconds = time.perf_counter() - start
    print(f"\n{len(specs)} phantom(s), {seconds:.0f} s wall")
    return phantoms, seconds


def machine() -> dict[str, Any]:
    """Where a phantom was measured: the Keras backend, the CPU model, its cores and their load."""
    import keras  # the benchmark has imported it already; here only to read the backend

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
                cpu,
            )
    except OSError:  # not Linux
        pass
    return {
        "keras_backend": keras.backend.backend(),
        "keras": keras.__version__,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 1),
    }


def measured_before(
    args: argparse.Namespace, setup: dict[str, Any], names: set[str]
) -> list[dict[str, Any]]:
    """With ``--resume``, the phantoms of ``names`` that ``--json`` already holds.

    A run of several hours on a shared machine can be cut off; resuming keeps what it measured.
    A file written with other options is refused rather than mixed in.
    """
    if not args.resume:
        return []
    if args.json is None or not args.json.exists():
        raise SystemExit("--resume needs --json FILE naming the earlier run's results")
    record = json.loads(args.json.read_text())
    if record.get("setup") != json.loads(json.dumps(setup)):  # as written: tuples are lists
        raise SystemExit(
            f"--resume: {args.json} was written with {record.get('setup')}, not {setup}; "
            "give the same options or another --json"
        )
    kept = [phantom for phantom in record["phantoms"] if phantom["spec"]["name"] in names]
    print(
        f"resuming: {len(kept)} phantom(s) kept from {args.json}: "
        + ", ".join(phantom["spec"]["name"].split("-")[0] for phantom in kept),
        flush=True,
    )
    return kept
