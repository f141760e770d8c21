"""Distributed segmentation on a LocalCluster of 2 worker processes, with real (tiny) saved networks.

Outputs are compared with the in-process ``segment_volume``: the MRC header byte for byte except
the text labels (mrcfile stamps label 0 with the second the file was created, which no two runs
share) and the statistics words; the voxels, and so those statistics, to float32 rounding. A worker
runs TensorFlow with one thread and the test process with all cores, and TensorFlow's CPU
convolutions may round differently with another thread count (seen: up to 2e-6 on a loaded machine).
"""

import json
import os
import sys
import threading
from pathlib import Path

import distributed
import mrcfile
import numpy as np
import pytest

from tomoseg_nb.distributed import (
    ClusterSpec,
    Manifest,
    open_cluster,
    parse_cluster,
    segment_volumes,
)
from tomoseg_nb.distributed.cluster import usable_cores
from tomoseg_nb.distributed.units import cached_network, model_fingerprint
from tomoseg_nb.errors import BadInputError, CancelledError, OutputExistsError
from tomoseg_nb.segment import FeatureNetwork

MRC_LABELS = slice(220, 1024)  # nlabl + ten 80-character labels
MRC_STATISTICS = (slice(76, 88), slice(216, 220))  # dmin, dmax, dmean; rms
ROUNDING = 1e-5  # float32 rounding of a probability in [0, 1] through a few layers


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two small tomograms (uneven depths, an origin) and two tiny networks saved with save_model."""
    from tomoseg_nb.models import ModelInfo, build_model, save_model
    from tomoseg_nb.preprocess import Recipe
    from tomoseg_nb.volume import write_volume

    folder = tmp_path_factory.mktemp("distributed")
    rng = np.random.default_rng(7)
    tomograms = []
    for name, depth in (("TS_01", 12), ("TS_02", 9)):
        path = folder / f"{name}.mrc"
        volume = rng.normal(size=(depth, 40, 44)).astype(np.float32)
        write_volume(path, volume, voxel_size=10.0, origin=(100.0, -20.0, 30.0))
        tomograms.append(path)
    models = []
    for seed, feature in enumerate(("membrane", "ribosome")):
        info = ModelInfo(feature=feature, arch="tiny", voxel_size=10.0, recipe=Recipe().to_dict())
        models.append(save_model(build_model("tiny", seed=seed), info, folder / f"{feature}.keras"))
    return {"folder": folder, "tomograms": tomograms, "models": models}


@pytest.fixture(scope="module")
def reference(data):
    """The in-process run: ``segment_volume`` per tomogram."""
    from tomoseg_nb.segment import segment_volume

    out = data["folder"] / "reference"
    for tomogram in data["tomograms"]:
        segment_volume(data["models"], tomogram, out, slab_size=2)
    return out


@pytest.fixture(scope="module")
def z_data(data):
    """Networks with z context 2 and 1 beside a 2D one, and their in-process maps (slab 2)."""
    from tomoseg_nb.models import ModelInfo, build_model, save_model
    from tomoseg_nb.preprocess import Recipe
    from tomoseg_nb.segment import segment_volume
    from tomoseg_nb.training_config import TrainingConfig

    folder = data["folder"] / "z_context"
    folder.mkdir()
    models = [data["models"][1]]  # ribosome, z context 0
    for seed, (feature, z_context) in enumerate((("membrane", 2), ("actin", 1))):
        model = build_model("tiny", seed=seed, channels=2 * z_context + 1)
        rng = np.random.default_rng(seed)
        for weight in model.weights:  # the initial weights give near-constant maps
            weight.assign(rng.normal(0.0, 0.2, weight.shape).astype("float32"))
        info = ModelInfo(
            feature=feature,
            arch="tiny",
            voxel_size=10.0,
            recipe=Recipe().to_dict(),
            training={"config": TrainingConfig(arch="tiny", z_context=z_context).to_dict()},
        )
        models.append(save_model(model, info, folder / f"{feature}.keras"))
    reference = folder / "reference"
    for tomogram in data["tomograms"]:
        segment_volume(models, tomogram, reference, slab_size=2)
    return {"models": models, "tomograms": data["tomograms"], "reference": reference}


@pytest.fixture(scope="module")
def client():
    with open_cluster("local:2") as client:
        yield client


def segment(data, out, **options):
    options = {"slab_size": 2, "unit_slices": 4, **options}
    return segment_volumes(data["models"], data["tomograms"], out, **options)


def assert_same_maps(expected_dir: Path, actual_dir: Path) -> None:
    expected = sorted(p.name for p in expected_dir.glob("*.mrc"))
    assert expected and sorted(p.name for p in actual_dir.glob("*.mrc")) == expected
    for name in expected:
        a, b = (expected_dir / name).read_bytes(), (actual_dir / name).read_bytes()
        assert len(a) == len(b), name
        assert _header_words(a) == _header_words(b), f"{name}: header differs"
        with mrcfile.open(expected_dir / name) as want, mrcfile.open(actual_dir / name) as got:
            np.testing.assert_allclose(got.data, want.data, rtol=0, atol=ROUNDING, err_msg=name)
            for field in ("dmin", "dmax", "dmean", "rms"):
                assert abs(float(got.header[field]) - float(want.header[field])) <= ROUNDING
    assert not list(actual_dir.glob(".*")), "partial outputs left behind"


def _header_words(mrc_bytes: bytes) -> bytes:
    """The MRC header but its text labels and statistics words."""
    header = bytearray(mrc_bytes[: MRC_LABELS.start])
    for words in MRC_STATISTICS:
        header[words] = bytes(words.stop - words.start)
    return bytes(header)


def manifest(out: Path, name: str) -> Manifest:
    return Manifest.load(out / f"{name}.segment.json")


def test_cluster_output_is_the_in_process_one_and_a_rerun_is_skipped(
    data, reference, client, tmp_path
):
    run = segment(data, tmp_path, client=client)
    assert_same_maps(reference, tmp_path)
    assert (run.units_total, run.units_computed, run.units_skipped) == (6, 6, 0)
    records = manifest(tmp_path, "TS_01")
    assert records.complete and sorted(records.units) == [
        "z0000-0004:membrane+ribosome",
        "z0004-0008:membrane+ribosome",
        "z0008-0012:membrane+ribosome",
    ]
    assert all(
        unit["seconds"] > 0 and unit["pid"] != os.getpid() for unit in records.units.values()
    )
    assert (
        len(
            {
                unit["pid"]
                for m in ("TS_01", "TS_02")
                for unit in manifest(tmp_path, m).units.values()
            }
        )
        == 2
    )

    again = segment(data, tmp_path, client=client)
    assert (again.units_computed, again.units_skipped) == (0, 6)
    assert again.outputs == run.outputs


def test_workers_limit_tensorflow_threads_to_their_share(client):
    threads = client.run(
        lambda: (os.environ["TF_NUM_INTRAOP_THREADS"], os.environ["TF_NUM_INTEROP_THREADS"])
    )
    assert len(threads) == 2
    share = str(max(1, usable_cores() // 2))
    assert set(threads.values()) == {(share, share)}


def test_interrupted_run_recomputes_only_unfinished_units(data, reference, client, tmp_path):
    def interrupt(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        segment(data, tmp_path, client=client, progress=interrupt)
    first = {m: manifest(tmp_path, m) for m in ("TS_01", "TS_02")}
    recorded = {(m, unit): record for m, man in first.items() for unit, record in man.units.items()}
    assert 2 <= len(recorded) < 6
    assert not any(man.complete for man in first.values())
    assert sorted(p.name for p in tmp_path.glob(".*.partial.mrc"))  # kept for resuming

    run = segment(data, tmp_path, client=client)
    assert (run.units_computed, run.units_skipped) == (6 - len(recorded), len(recorded))
    for (m, unit), record in recorded.items():
        assert manifest(tmp_path, m).units[unit] == record  # not recomputed
    assert_same_maps(reference, tmp_path)


def test_cli_runs_on_a_scheduler_address(data, reference, client, tmp_path, capsys):
    from tomoseg_nb.cli import main

    address = client.scheduler.address
    argv = ["segment", *map(str, data["tomograms"]), "--out", str(tmp_path), "--slab", "2"]
    for model in data["models"]:
        argv += ["--model", str(model)]
    assert main([*argv, "--cluster", address]) == 0
    assert_same_maps(reference, tmp_path)
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(tmp_path / p.name) for p in reference.glob("*.mrc"))


Z_UNITS = [  # slab 2, units of 4 slices: boundaries inside TS_01 (12 deep) at 4 and 8
    "z0000-0004:ribosome+membrane+actin",
    "z0004-0008:ribosome+membrane+actin",
    "z0008-0012:ribosome+membrane+actin",
]


def test_z_context_units_read_neighbours_across_their_boundaries(z_data, tmp_path):
    """Each unit reads k slices beyond its ends (mirrored only past the tomogram's): the maps are
    ``segment_volume``'s, at the unit boundaries and at both ends of the tomogram."""
    from tomoseg_nb.model_files import sidecar_z_context
    from tomoseg_nb.segment import segment_array
    from tomoseg_nb.volume import open_volume

    assert [sidecar_z_context(m) for m in z_data["models"]] == [0, 2, 1]
    run = segment(z_data, tmp_path)
    assert (run.units_total, run.units_computed) == (6, 6)
    assert sorted(manifest(tmp_path, "TS_01").units) == Z_UNITS
    assert_same_maps(z_data["reference"], tmp_path)

    # The comparison can tell: a unit mirrored at its own ends (segmented alone) gives other maps.
    with open_volume(z_data["tomograms"][0]) as volume:
        tomogram = volume.read()
    with open_volume(tmp_path / "TS_01__membrane.mrc") as volume:
        membrane = volume.read()
    (alone,) = segment_array([z_data["models"][1]], tomogram[4:8], voxel_size=10.0, slab_size=2)
    assert np.abs(alone[0] - membrane[4]).max() > 1e-3
    assert np.abs(alone[3] - membrane[7]).max() > 1e-3


def test_z_context_maps_do_not_depend_on_the_unit_layout(z_data, tmp_path):
    """One-slice units, one network each: every slice is a unit boundary; the maps equal
    ``segment_volume``'s (computed two slices at a time) within float32 rounding."""
    from tomoseg_nb.volume import open_volume

    run = segment(z_data, tmp_path, slab_size=1, unit_slices=1, features_per_unit=1)
    assert run.units_total == 3 * (12 + 9)
    assert "z0011-0012:membrane" in manifest(tmp_path, "TS_01").units
    expected = sorted(p.name for p in z_data["reference"].glob("*.mrc"))
    assert len(expected) == 6 and sorted(p.name for p in tmp_path.glob("*.mrc")) == expected
    for name in expected:
        with open_volume(z_data["reference"] / name) as a, open_volume(tmp_path / name) as b:
            np.testing.assert_allclose(b.read(), a.read(), rtol=0, atol=ROUNDING, err_msg=name)


def test_z_context_units_on_the_cluster_match_segment_volume(z_data, client, tmp_path):
    run = segment(z_data, tmp_path, client=client)
    assert run.units_computed == 6
    records = manifest(tmp_path, "TS_01")
    assert sorted(records.units) == Z_UNITS
    assert all(unit["pid"] != os.getpid() for unit in records.units.values())
    assert_same_maps(z_data["reference"], tmp_path)


def test_cli_segments_z_context_models_on_the_cluster(z_data, client, tmp_path, capsys):
    from tomoseg_nb.cli import main

    argv = ["segment", *map(str, z_data["tomograms"]), "--out", str(tmp_path), "--slab", "2"]
    for model in z_data["models"]:
        argv += ["--model", str(model)]
    assert main([*argv, "--cluster", client.scheduler.address]) == 0
    assert_same_maps(z_data["reference"], tmp_path)
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(
        str(tmp_path / p.name) for p in z_data["reference"].glob("*.mrc")
    )


class KillAfterFirstUnit(distributed.WorkerPlugin):
    """Kill the first worker process that finishes a unit (its slab written, its result not sent)."""

    def __init__(self, marker: str):
        self.marker = marker

    def transition(self, key, start, finish, **kwargs):
        if start == "executing" and str(key).startswith("tomoseg-unit"):
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return
            os._exit(1)


def test_lost_worker_units_are_rescheduled_with_identical_output(data, reference, client, tmp_path):
    # Last of the cluster tests: the restarted worker would otherwise import Keras again.
    marker = tmp_path / "killed"
    client.register_plugin(KillAfterFirstUnit(str(marker)), name="kill-after-first-unit")
    try:
        run = segment(data, tmp_path / "out", client=client)
    finally:
        client.unregister_worker_plugin("kill-after-first-unit")
    assert marker.exists(), "no worker was killed"
    assert run.units_computed == 6
    assert_same_maps(reference, tmp_path / "out")
    assert sum(len(manifest(tmp_path / "out", m).units) for m in ("TS_01", "TS_02")) == 6


def test_in_process_run_matches_and_splits_features(data, reference, tmp_path):
    run = segment(data, tmp_path, features_per_unit=1, unit_slices=3)
    assert (run.units_total, run.units_computed) == (2 * (3 + 3), 12)
    assert "z0000-0004:ribosome" in manifest(tmp_path, "TS_01").units
    assert_same_maps(reference, tmp_path)


def test_changed_model_or_tomogram_voids_the_manifest(data, tmp_path):
    model = data["models"][0]
    stat = model.stat()
    segment(data, tmp_path)
    try:
        os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        with pytest.raises(OutputExistsError, match=r"TS_01__membrane\.mrc"):
            segment(data, tmp_path)
        assert segment(data, tmp_path, overwrite=True).units_computed == 6
    finally:
        os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    cancel = threading.Event()
    out = tmp_path / "unfinished"
    with pytest.raises(CancelledError, match="run the same command again"):
        segment(data, out, cancel=cancel, progress=lambda done, total: cancel.set())
    assert len(manifest(out, "TS_01").units) == 1
    tomogram = data["tomograms"][0]
    stat = tomogram.stat()
    try:
        os.utime(tomogram, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        with pytest.warns(UserWarning, match="changed since this unfinished run"):
            run = segment(data, out)
        assert (run.units_computed, run.units_skipped) == (6, 0)
    finally:
        os.utime(tomogram, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_existing_outputs_are_refused_before_any_work(data, reference, tmp_path):
    (tmp_path / "TS_02__ribosome.mrc").write_bytes((reference / "TS_02__ribosome.mrc").read_bytes())
    with pytest.raises(OutputExistsError, match="--overwrite"):
        segment(data, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["TS_02__ribosome.mrc"]


def test_workers_load_each_model_once_and_refuse_a_changed_file(data, tmp_path, monkeypatch):
    path = tmp_path / "copy.keras"
    path.write_bytes(data["models"][0].read_bytes())
    path.with_suffix(".json").write_bytes(data["models"][0].with_suffix(".json").read_bytes())
    loads = []
    load = FeatureNetwork.load
    monkeypatch.setattr(FeatureNetwork, "load", lambda p: loads.append(p) or load(p))
    planned = model_fingerprint(path)
    network = cached_network(str(path), planned)
    assert cached_network(str(path), planned) is network
    assert loads == [str(path)]
    path.with_suffix(".json").write_text(path.with_suffix(".json").read_text() + " ")
    assert cached_network(str(path), planned) is network  # units planned with it stay consistent
    with pytest.raises(BadInputError, match="changed while the segmentation was running"):
        cached_network(str(path), (planned[0] + 1, *planned[1:]))  # a version no longer on disk


def test_manifest_of_another_program_is_refused(data, tmp_path):
    (tmp_path / "TS_01.segment.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(BadInputError, match="delete it to start this tomogram over"):
        segment(data, tmp_path)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("local:3", ClusterSpec("local", workers=3)),
        ("local", ClusterSpec("local")),
        ("tcp://10.0.0.5:8786", ClusterSpec("address", address="tcp://10.0.0.5:8786")),
        ("scheduler:8786", ClusterSpec("address", address="tcp://scheduler:8786")),
        ("slurm", ClusterSpec("slurm", workers=1)),
        ("slurm:8", ClusterSpec("slurm", workers=8)),
        ("pbs:2", ClusterSpec("pbs", workers=2)),
        ("gateway", ClusterSpec("gateway", workers=4)),
        ("gateway:10", ClusterSpec("gateway", workers=10)),
        (
            "gateway:https://hub.example.org/services/dask-gateway",
            ClusterSpec("gateway", 4, "https://hub.example.org/services/dask-gateway"),
        ),
    ],
)
def test_cluster_strings_are_parsed(spec, expected):
    assert parse_cluster(spec) == expected


@pytest.mark.parametrize("spec", ["local:0", "slurm:many", "kubernetes", ""])
def test_bad_cluster_strings_say_what_is_expected(spec):
    with pytest.raises(BadInputError, match="local:N"):
        parse_cluster(spec)


@pytest.mark.parametrize(
    ("spec", "module", "hint"),
    [
        ("slurm:2", "dask_jobqueue", "pip install dask-jobqueue"),
        ("gateway", "dask_gateway", "pip install dask-gateway"),
    ],
)
def test_missing_optional_packages_are_named(spec, module, hint, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(BadInputError, match=hint), open_cluster(spec):
        pass
