"""Safe on a shared hub: model files cannot run code, nothing is unpickled, paths stay in their folder,
and nothing talks to the network.
"""

from __future__ import annotations

import ast
import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

import tomoseg_nb
from tomoseg_nb.errors import BadInputError

PACKAGE = Path(tomoseg_nb.__file__).parent


# ------------------------------------------------------------------ models cannot run code


def _model_with_code(path: Path, marker: Path):
    """A .keras file whose Lambda layer writes ``marker``: what a hostile shared model would do."""
    import keras

    # Built from source so the saved bytecode holds the marker path as a constant.
    payload = eval(
        f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]"
    )
    inputs = keras.Input((None, None, 1))
    hidden = keras.layers.Lambda(payload)(inputs)
    outputs = keras.layers.MaxPooling2D(2)(keras.layers.Conv2D(1, 3, padding="same")(hidden))
    keras.Model(inputs, outputs).save(path)
    marker.unlink(missing_ok=True)  # building the model ran it once, here, on purpose
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    import keras

    from tomoseg_nb.models import ModelInfo
    from tomoseg_nb.preprocess import Recipe

    folder = tmp_path_factory.mktemp("hostile")
    marker = folder / "code-ran"
    path = _model_with_code(folder / "membrane.keras", marker)
    sidecar = ModelInfo(feature="membrane", arch="tiny", voxel_size=10.0, recipe=Recipe().to_dict())
    path.with_suffix(".json").write_text(json.dumps(sidecar.to_dict()))
    # The threat is real: Keras without safe mode runs the payload while loading.
    keras.saving.load_model(path, compile=False, safe_mode=False)
    assert marker.read_text() == "ran"
    marker.unlink()
    return {"model": path, "marker": marker, "folder": folder}


def test_load_model_refuses_a_model_carrying_code(hostile):
    from tomoseg_nb.models import load_model

    with pytest.raises(BadInputError, match="Lambda layer or custom code, which is refused"):
        load_model(hostile["model"])
    assert not hostile["marker"].exists()


def test_the_boxer_loader_refuses_a_network_carrying_code(hostile, tmp_path):
    from tomoseg_nb.boxer.model import BoxerInfo, BoxerModel, load_boxer, save_boxer
    from tomoseg_nb.boxer.networks import build_classifier, build_picker
    from tomoseg_nb.boxer.preprocess import BoxerRecipe

    recipe = BoxerRecipe()
    model = BoxerModel(
        picker=build_picker(seed=0),
        classifier=build_classifier(recipe.working_box_px, seed=0),
        references=np.zeros((2, 48, 48), np.float32),
        info=BoxerInfo(box_px=40.0, pixel_size=10.0, recipe=recipe.to_dict()),
    )
    folder = save_boxer(model, tmp_path / "model.boxer")
    for network in ("picker.keras", "classifier.keras"):
        copy = tmp_path / f"hostile-{network}.boxer"
        shutil.copytree(folder, copy)
        shutil.copy(hostile["model"], copy / network)
        with pytest.raises(BadInputError, match=f"{network}: holds a Lambda layer"):
            load_boxer(copy)
    assert not hostile["marker"].exists()


def test_a_registered_but_foreign_class_name_is_refused_too(tmp_path):
    """A config naming a class no one registered (a typo, or code from elsewhere) fails cleanly."""
    import zipfile

    from tomoseg_nb.models import build_model, load_keras_file

    good = tmp_path / "good.keras"
    build_model("tiny", seed=0).save(good)
    with zipfile.ZipFile(good) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["class_name"] = "EvilConv"
    config["config"]["layers"][1]["module"] = "somebody.elses.package"
    members["config.json"] = json.dumps(config).encode()
    foreign = tmp_path / "foreign.keras"
    with zipfile.ZipFile(foreign, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(BadInputError, match=r"foreign\.keras"):
        load_keras_file(foreign)


# ---------------------------------------------------------------------------- no pickle

FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve"}
FORBIDDEN_CALLS = {"read_pickle", "to_pickle", "eval", "exec"}


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def _call_name(call: ast.Call) -> str:
    function = call.func
    return function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")


def scan(paths: list[Path], root: Path) -> list[str]:
    """Every way to unpickle or to run stored code, found on the syntax tree of ``paths``.

    ``np.load`` must say ``allow_pickle=False`` and Keras loading ``safe_mode=True`` explicitly,
    so a future change of defaults cannot open the door.
    """
    problems = []
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(root)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            else:
                names = []
            problems += [
                f"{where}:{node.lineno} imports {n}" for n in names if n in FORBIDDEN_MODULES
            ]
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            if name in FORBIDDEN_CALLS:
                problems.append(f"{where}:{node.lineno} calls {name}")
            owner = node.func.value if isinstance(node.func, ast.Attribute) else None
            if name == "load" and isinstance(owner, ast.Name) and owner.id in ("np", "numpy"):
                flag = _keyword(node, "allow_pickle")
                if not (isinstance(flag, ast.Constant) and flag.value is False):
                    problems.append(f"{where}:{node.lineno} np.load without allow_pickle=False")
            if name == "load_model" and owner is not None:  # keras.saving.load_model(...)
                flag = _keyword(node, "safe_mode")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    problems.append(f"{where}:{node.lineno} keras load_model without safe_mode")
            if name == "enable_unsafe_deserialization":
                problems.append(f"{where}:{node.lineno} enables unsafe deserialization")
    return problems


def test_no_pickle_anywhere_in_the_package():
    """No module of the package can unpickle or run stored code.

    Scoped exception, outside the package: Dask pickles (cloudpickle) its own task messages between
    the processes of one user's cluster. That is Dask's transport, not a file anyone shares, and
    ``test_only_plain_data_crosses_the_dask_transport`` bounds what goes through it.
    """
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 50  # the scan saw the package
    assert scan(sources, PACKAGE.parent) == []


def test_the_scan_catches_what_it_forbids(tmp_path):
    snippets = [
        "import pickle",
        "from joblib import load",
        "import cloudpickle.cloudpickle",
        "import numpy as np\nnp.load('x.npy', allow_pickle=True)",
        "import numpy as np\nnp.load('x.npz')",
        "import keras\nkeras.saving.load_model('m.keras')",
        "import keras\nkeras.saving.load_model('m.keras', safe_mode=False)",
        "import pandas as pd\npd.read_pickle('x')",
        "exec(open('x').read())",
    ]
    paths = []
    for index, snippet in enumerate(snippets):
        paths.append(tmp_path / f"m{index}.py")
        paths[-1].write_text(snippet + "\n")
    problems = scan(paths, tmp_path)
    assert sorted({p.split(":")[0] for p in problems}) == sorted(p.name for p in paths)


def test_only_plain_data_crosses_the_dask_transport(tmp_path):
    """What a client sends to Dask workers: a function by reference and units of plain values.

    Workers load models from files in safe mode themselves; no array, model or object crosses.
    """
    from tomoseg_nb.distributed.units import ModelFile, plan_units, run_unit

    models = (ModelFile(str(tmp_path / "m.keras"), "membrane", (1, 2)),)
    units = plan_units(
        str(tmp_path / "t.mrc"),
        40,
        models,
        (str(tmp_path / "o.mrc"),),
        dtype="float32",
        slab_size=4,
        unit_slices=16,
        features_per_unit=None,
        engine="auto",
    )

    def plain(value) -> bool:
        if isinstance(value, (str, int, float, bool, type(None))):
            return True
        if isinstance(value, (tuple, list)):
            return all(plain(v) for v in value)
        if hasattr(value, "__dataclass_fields__"):
            return all(plain(getattr(value, f)) for f in value.__dataclass_fields__)
        return False

    assert units and all(plain(unit) for unit in units)
    assert run_unit.__module__ == "tomoseg_nb.distributed.units"  # pickled by name, not by value
    assert "<locals>" not in run_unit.__qualname__


# ---------------------------------------------------------------- paths stay in their folder


def test_a_sidecar_naming_an_escaping_feature_is_refused(tmp_path):
    from tomoseg_nb.models import ModelInfo, build_model, load_model, save_model
    from tomoseg_nb.preprocess import Recipe

    info = ModelInfo(feature="membrane", arch="tiny", voxel_size=10.0, recipe=Recipe().to_dict())
    path = save_model(build_model("tiny", seed=0), info, tmp_path / "m.keras")
    sidecar = json.loads(path.with_suffix(".json").read_text())
    for hostile in ("../../outside", "/etc/passwd", "a/b", "..", ""):
        path.with_suffix(".json").write_text(json.dumps({**sidecar, "feature": hostile}))
        with pytest.raises(BadInputError, match=r"m\.json"):
            load_model(path)


def test_feature_and_micrograph_names_cannot_leave_their_folder(tmp_path):
    from tomoseg_nb.annotations import Project
    from tomoseg_nb.boxer.files import pick_path
    from tomoseg_nb.evaluate import evaluate

    with Project.create(tmp_path / "p", tomogram_shape=(4, 64, 64)) as project:
        for name in ("../x", "a/b", "..", "/abs"):
            with pytest.raises(BadInputError, match="not allowed"):
                project.add_feature(name)
    for name in ("../x", "a/b", "..", ""):
        with pytest.raises(BadInputError, match="cannot name a file"):
            pick_path(tmp_path, name, "star")
    with pytest.raises(BadInputError, match="not allowed"):
        evaluate(np.zeros((4, 64, 64)), np.zeros((4, 64, 64)), {"../x": 1}, keep=tmp_path / "k")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["masks.npz", "project.json"]


def test_a_crafted_project_file_cannot_point_its_tiles_outside(tmp_path):
    """Tile ids and feature names are checked on opening (tests/test_annotations.py has more)."""
    from tomoseg_nb.annotations import PROJECT_FILE, Project

    with Project.create(tmp_path / "p", tomogram_shape=(4, 64, 64)) as project:
        project.add_feature("membrane", tile_size=16)
        project.add_tile("membrane", 0, 20, 20)
    good = json.loads((tmp_path / "p" / PROJECT_FILE).read_text())
    for field, value in [("id", "../../masks"), ("id", "/tmp/x"), ("feature", "../membrane")]:
        hostile = json.loads(json.dumps(good))
        hostile["tiles"][0][field] = value
        (tmp_path / "p" / PROJECT_FILE).write_text(json.dumps(hostile))
        with pytest.raises(BadInputError, match="bad id or an unknown feature"):
            Project.open(tmp_path / "p")


# -------------------------------------------------------------------------- no network


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to reach another machine (or resolve a name) fails loudly, and is recorded."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access attempted during a tomoseg_nb run")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_the_whole_pipeline_runs_without_the_network(no_network, tmp_path):
    """simulate -> annotate -> train -> segment -> merge -> pick, and the boxer, with sockets refused."""
    import warnings

    from tomoseg_nb.annotations import Project
    from tomoseg_nb.boxer.model import load_boxer, save_boxer
    from tomoseg_nb.boxer.pick import autopick
    from tomoseg_nb.boxer.references import collect_references
    from tomoseg_nb.boxer.train import train_boxer
    from tomoseg_nb.coords import read_picks, write_picks
    from tomoseg_nb.evaluate import annotate_from_truth
    from tomoseg_nb.merge import merge_files
    from tomoseg_nb.models import load_model, save_model
    from tomoseg_nb.picking import pick_particles
    from tomoseg_nb.segment import segment_volume
    from tomoseg_nb.synthetic import simulate_tomogram, write_tomogram_phantom
    from tomoseg_nb.synthetic.micrograph import phantom_references, simulate_micrograph
    from tomoseg_nb.train import train_feature
    from tomoseg_nb.training_config import TrainingConfig
    from tomoseg_nb.volume import open_volume

    phantom = simulate_tomogram((16, 128, 128), seed=0)
    files = write_tomogram_phantom(phantom, tmp_path / "phantom")
    with Project.create(tmp_path / "project", tomogram=files["tomogram"]) as project:
        annotate_from_truth(
            project, "ribosome", phantom.labels, 3, n_positive=3, n_negative=6, tile_size=32
        )
    with Project.open(tmp_path / "project", read_only=True) as project:
        model, info = train_feature(project, "ribosome", TrainingConfig(arch="tiny", epochs=1))
    model_path = save_model(model, info, tmp_path / "ribosome.keras")
    load_model(model_path)
    (ribosome,) = segment_volume([model_path], files["tomogram"], tmp_path / "maps")
    result = merge_files([ribosome], tmp_path / "labels.mrc", threshold=0.5)
    assert result.labels_path.exists()
    with open_volume(ribosome) as volume, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        picks = pick_particles(volume.read(), threshold=0.5, min_distance_px=4, min_mass=0)
    read_picks(write_picks(tmp_path / "picks.csv", picks))

    micrograph = simulate_micrograph((256, 256), pixel_size=10.0, n_particles=8, seed=0)
    chosen = phantom_references(micrograph, n_good=5, n_background=5, n_bad=0, seed=0)
    references = collect_references(
        [micrograph.image],
        [chosen["good"]],
        [chosen["background"]],
        box_px=round(1.5 * micrograph.particle_diameter_px),
        pixel_sizes=10.0,
    )
    boxer = train_boxer(references, epochs=1, samples_per_class=32)
    boxer = load_boxer(save_boxer(boxer, tmp_path / "model.boxer"))
    autopick(boxer, micrograph.image)
    assert no_network == []


def test_the_local_dask_cluster_listens_on_loopback_only():
    """The one use of sockets by design: Dask's scheduler, workers and dashboard, all on 127.0.0.1.

    On a shared hub another user, or another machine, must not reach them.
    """
    psutil = pytest.importorskip("psutil")
    from tomoseg_nb.distributed import open_cluster

    with open_cluster("local:1") as client:
        processes = [psutil.Process(), *psutil.Process().children(recursive=True)]
        listening = [
            connection.laddr.ip
            for process in processes
            for connection in process.net_connections(kind="inet")
            if connection.status == psutil.CONN_LISTEN
        ]
        assert client.dashboard_link.startswith("http://127.0.0.1:")
    assert len(listening) >= 3  # scheduler, dashboard, worker (and its nanny)
    assert set(listening) <= {"127.0.0.1", "::1"}, listening
