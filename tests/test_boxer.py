"""The 2D boxer learns to pick on small phantoms, and refuses bad input with useful messages."""

import warnings

import numpy as np
import pytest

from tomoseg_nb.boxer.model import load_boxer, save_boxer
from tomoseg_nb.boxer.pick import autopick, autopick_micrographs
from tomoseg_nb.boxer.references import MIN_REFERENCES, collect_references, extract_boxes
from tomoseg_nb.boxer.train import train_boxer
from tomoseg_nb.errors import BadInputError, MissingInputError, OutputExistsError
from tomoseg_nb.metrics import match_points
from tomoseg_nb.synthetic.micrograph import phantom_references, simulate_micrograph

PIXEL_SIZE = 10.0


@pytest.fixture(scope="module")
def phantoms():
    """Two training micrographs and one held-out, with contamination and aggregates."""
    options = dict(
        pixel_size=PIXEL_SIZE, n_particles=25, n_aggregates=3, n_contamination=3, snr=0.5
    )
    return [
        simulate_micrograph((512, 512), seed=seed, defocus_um=1.5 + 0.5 * seed, **options)
        for seed in range(3)
    ]


@pytest.fixture(scope="module")
def box_px(phantoms):
    return round(1.5 * phantoms[0].particle_diameter_px)


@pytest.fixture(scope="module")
def coordinates(phantoms):
    refs = [
        phantom_references(p, n_good=6, n_background=6, n_bad=6, seed=i)
        for i, p in enumerate(phantoms[:2])
    ]
    return {kind: [r[kind] for r in refs] for kind in ("good", "background", "bad")}


@pytest.fixture(scope="module")
def references(phantoms, coordinates, box_px):
    return collect_references(
        [p.image for p in phantoms[:2]],
        coordinates["good"],
        coordinates["background"],
        coordinates["bad"],
        box_px=box_px,
        pixel_sizes=PIXEL_SIZE,
    )


@pytest.fixture(scope="module")
def model(references):
    return train_boxer(references, epochs=5, samples_per_class=160, filters=(8, 8), seed=0)


def f1(picks, phantom):
    return match_points(
        picks.coordinates, phantom.particles, 0.25 * phantom.particle_diameter_px
    ).f1


def test_references(references):
    assert references.counts() == {"good": 12, "background": 12, "bad": 12}
    box = references.working_box_px
    assert references.boxes("good").shape[1:] == (box, box)
    assert references.good.shape[-1] >= box * np.sqrt(2)


def test_picker_learns(model, phantoms):
    held_out = phantoms[2]
    result = autopick(model, held_out.image)  # the calibrated threshold
    rng = np.random.default_rng(0)
    chance = match_points(
        rng.uniform(0, 512, (max(len(result.picks), 1), 2)),
        held_out.particles,
        0.25 * held_out.particle_diameter_px,
    ).f1
    assert f1(result.picks, held_out) > 0.6 > chance + 0.4
    assert result.picks.tomogram == "micrograph"
    assert result.picks.voxel_size == PIXEL_SIZE
    assert np.all(np.diff(result.candidates.score_values) <= 0)  # strongest first


def test_classifier_tells_particles_from_contamination(model, phantoms):
    held_out = phantoms[2]
    refs = phantom_references(held_out, n_good=10, n_background=0, n_bad=10, seed=1)
    from tomoseg_nb.boxer.pick import classify_boxes
    from tomoseg_nb.boxer.preprocess import prepare_micrograph

    prepared, frame = prepare_micrograph(
        held_out.image, model.info.box_px, model.info.boxer_recipe()
    )
    box = model.info.boxer_recipe().working_box_px
    good = classify_boxes(model.classifier, prepared, frame.to_working(refs["good"]), box)
    bad = classify_boxes(model.classifier, prepared, frame.to_working(refs["bad"]), box)
    assert good.mean() > bad.mean() + 0.2


def test_classifier_threshold_only_removes(model, phantoms):
    result = autopick(model, phantoms[2].image, classifier_threshold=0.0)
    assert len(result.picks) == len(result.candidates)
    strict = result.with_classifier_threshold(0.99)
    assert len(strict.picks) < len(result.picks)
    assert set(map(tuple, strict.picks.coordinates)) <= set(map(tuple, result.picks.coordinates))


def test_template_baseline_runs(model, phantoms):
    result = autopick(model, phantoms[2].image, method="template", threshold=2.0)
    assert result.classifier_scores is None and len(result.picks) > 0
    assert f1(result.picks, phantoms[2]) > 0.2
    with pytest.raises(BadInputError, match="unknown picking method"):
        autopick(model, phantoms[2].image, method="magic")


def test_other_pixel_size_is_rescaled_with_a_warning(model, phantoms):
    held_out = phantoms[2]
    binned = held_out.image.reshape(256, 2, 256, 2).mean(axis=(1, 3))
    with pytest.warns(UserWarning, match="differs from the training"):
        result = autopick(model, binned, pixel_size=2 * PIXEL_SIZE)
    truth = (held_out.particles + 0.5) / 2 - 0.5
    matched = match_points(
        result.picks.coordinates, truth, 0.25 * held_out.particle_diameter_px / 2
    )
    assert matched.f1 > 0.5
    assert result.box_px == pytest.approx(model.info.box_px / 2)


def test_save_and_load(model, phantoms, tmp_path):
    path = save_boxer(model, tmp_path / "ribosome.boxer")
    assert {p.name for p in path.iterdir()} == {
        "boxer.json",
        "picker.keras",
        "classifier.keras",
        "references.npz",
    }
    loaded = load_boxer(path)
    assert loaded.info.box_px == pytest.approx(model.info.box_px)
    assert loaded.info.counts == model.info.counts
    before = autopick(model, phantoms[2].image)
    after = autopick(loaded, phantoms[2].image)
    assert np.allclose(before.picks.coordinates, after.picks.coordinates)
    with pytest.raises(OutputExistsError):
        save_boxer(model, path)
    with pytest.raises(MissingInputError):
        load_boxer(tmp_path / "missing.boxer")
    (tmp_path / "other").mkdir()
    with pytest.raises(BadInputError, match="not a boxer model"):
        load_boxer(tmp_path / "other")


def test_batch_of_micrographs(model, phantoms, tmp_path):
    from tomoseg_nb.volume import write_volume

    path = write_volume(tmp_path / "held_out.mrc", phantoms[2].image, voxel_size=PIXEL_SIZE)
    seen = []
    results = list(
        autopick_micrographs(
            model,
            [path, phantoms[1].image],
            progress=lambda done, total: seen.append((done, total)),
        )
    )
    assert [r.picks.tomogram for r in results] == ["held_out", "micrograph_2"]
    assert seen == [(1, 2), (2, 2)]
    assert np.allclose(
        results[0].picks.coordinates, autopick(model, phantoms[2].image).picks.coordinates
    )


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["good", "background"])
def test_too_few_references(phantoms, coordinates, box_px, kind):
    chosen = {k: [coordinates[k][0]] for k in ("good", "background", "bad")}
    chosen[kind] = [coordinates[kind][0][: MIN_REFERENCES - 1]]
    with pytest.raises(BadInputError, match=f"4 {kind} reference.*at least 5 {kind}"):
        collect_references(
            [phantoms[0].image], chosen["good"], chosen["background"], chosen["bad"], box_px=box_px
        )


def test_box_off_the_image(phantoms, coordinates, box_px):
    good = np.concatenate([coordinates["good"][0], [[600.0, 20.0]]])
    with pytest.raises(
        BadInputError, match=r"1 good box centre\(s\) off the 512 x 512 image.*x=20, y=600"
    ):
        collect_references(
            [phantoms[0].image], [good], [coordinates["background"][0]], box_px=box_px
        )
    with pytest.raises(BadInputError, match="off the"):
        extract_boxes(np.zeros((10, 10)), np.array([[-3.0, 5.0]]), 4)


def test_box_partly_over_the_edge_is_mirrored():
    image = np.arange(100.0).reshape(10, 10)
    box = extract_boxes(image, np.array([[0.0, 5.0]]), 4)[0]
    assert box.shape == (4, 4) and np.array_equal(box[2], image[0, 3:7])


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((256, 256)), "constant"),
        (np.full((256, 256), 7.0), "constant"),
        (np.zeros((0, 0)), "empty"),
        (np.zeros(256), "2D micrograph"),
        (np.where(np.eye(64) > 0, np.nan, 1.0), "NaN"),
    ],
)
def test_empty_or_constant_micrograph(model, image, message):
    with pytest.raises(BadInputError, match=message):
        autopick(model, image)


def test_constant_training_micrograph(coordinates, box_px):
    with pytest.raises(BadInputError, match="constant"):
        collect_references(
            [np.ones((512, 512))],
            [coordinates["good"][0]],
            [coordinates["background"][0]],
            box_px=box_px,
        )


def test_mismatched_lists(phantoms, coordinates, box_px):
    with pytest.raises(BadInputError, match="one coordinate array per micrograph"):
        collect_references(
            [phantoms[0].image, phantoms[1].image],
            coordinates["good"][:1],
            coordinates["background"],
            box_px=box_px,
        )


def test_few_bad_references_warn(references):
    few = type(references)(
        good=references.good,
        background=references.background,
        bad=references.bad[:2],
        recipe=references.recipe,
        box_angstrom=references.box_angstrom,
        pixel_size=references.pixel_size,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = train_boxer(few, epochs=1, samples_per_class=32, filters=(4, 4))
    assert any("only 2 bad" in str(w.message) for w in caught)
    assert model.classifier is not None


def test_no_bad_references_means_no_classifier(references):
    none = type(references)(
        good=references.good,
        background=references.background,
        bad=references.bad[:0],
        recipe=references.recipe,
        box_angstrom=references.box_angstrom,
        pixel_size=references.pixel_size,
    )
    model = train_boxer(none, epochs=1, samples_per_class=32, filters=(4, 4))
    assert model.classifier is None and "classifier_loss" not in model.info.history
