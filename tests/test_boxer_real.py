"""The boxer on real data: a binned crop of an EMPIAR-10017 micrograph, and its hand-made cases.

The crop (``tests/data``, 512 x 512 px, 188 annotated beta-galactosidase particles about 27 px
across, crowded: many touch) is split in two: references are boxed on the left half the way a user
boxes them, picks are made on the right half and scored against the annotation.
"""

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from tomoseg_nb.boxer.calibrate import calibrated_threshold, threshold_for_count
from tomoseg_nb.boxer.files import read_micrograph
from tomoseg_nb.boxer.peaks import find_peaks
from tomoseg_nb.boxer.pick import autopick
from tomoseg_nb.boxer.references import collect_references
from tomoseg_nb.boxer.train import train_boxer
from tomoseg_nb.metrics import match_points

DATA = Path(__file__).parent / "data"
DIAMETER_PX = 27.0  # 108 px in the full-size micrograph, binned 4 x
BOX_PX = 1.5 * DIAMETER_PX


# --- calibrated threshold and count readout, on hand-made scores ------------------------------


def test_calibrated_threshold_sits_between_the_references():
    good = np.array([0.9, 0.8, 1.1, 0.85, 0.05])  # one good box the picker missed
    background = np.array([0.0, 0.1, 0.05, 0.9, 0.0])  # one background box with a particle in it
    # medians 0.85 and 0.05: the odd boxes do not move it
    assert calibrated_threshold(good, background, fraction=0.5) == pytest.approx(0.45)
    assert calibrated_threshold(good, background, fraction=0.25) == pytest.approx(0.25)
    default = calibrated_threshold(good, background)
    assert 0.05 < default < 0.45  # below the midpoint: new particles score lower than references
    # a picker that cannot tell them apart: its ideal answers, 0 and 1
    assert calibrated_threshold(np.array([0.1]), np.array([0.2]), fraction=0.5) == 0.5


def test_threshold_for_count_keeps_that_many():
    scores = np.array([0.2, 0.9, 0.5, 0.7, 0.1])
    assert threshold_for_count(scores, 3) == 0.5
    assert (scores >= threshold_for_count(scores, 3)).sum() == 3
    assert threshold_for_count(scores, 10) == 0.1  # more than there are: all of them
    assert threshold_for_count(scores, 0) == np.inf


# --- non-maximum suppression at the particle radius, on hand-made maps ------------------------


def bumps(shape, centres, heights, sigma=2.0):
    yy, xx = np.indices(shape)
    image = np.zeros(shape, np.float32)
    for (y, x), h in zip(centres, heights, strict=True):
        image += h * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))
    return image


def test_touching_particles_give_one_peak_each():
    # two particles 10 px apart (touching when 12 px across), a third far away
    score = bumps((64, 64), [(20, 20), (20, 30), (45, 45)], [1.0, 0.8, 0.6])
    coordinates, values = find_peaks(score, min_score=0.3, min_distance_px=6)  # the radius
    assert np.allclose(
        sorted(np.round(coordinates).tolist()), [[20, 20], [20, 30], [45, 45]], atol=0.5
    )
    assert values[0] == values.max()  # strongest first
    # at half the box (0.75 diameters, the old default) the weaker of the touching pair is lost
    coordinates, _ = find_peaks(score, min_score=0.3, min_distance_px=9)
    assert np.round(coordinates).tolist() == [[20, 20], [45, 45]]


def test_split_maxima_of_one_particle_merge():
    # one particle whose bump has two maxima 3 px apart: one pick
    score = bumps((48, 48), [(24, 22), (24, 25)], [1.0, 0.95], sigma=1.0)
    coordinates, values = find_peaks(score, min_score=0.3, min_distance_px=6)
    assert len(coordinates) == 1 and values[0] == pytest.approx(score.max())
    assert abs(coordinates[0][1] - 23.5) < 2


def test_min_score_and_threshold_sigma_exclude_each_other():
    score = bumps((32, 32), [(16, 16)], [1.0])
    with pytest.raises(ValueError, match="not both"):
        find_peaks(score, threshold_sigma=1.0, min_score=0.5, min_distance_px=4)
    with pytest.raises(ValueError, match="not both"):
        find_peaks(score, min_distance_px=4)


# --- end to end on the real crop -------------------------------------------------------------


@pytest.fixture(scope="module")
def crop():
    micrograph = read_micrograph(DATA / "empiar10017_crop_bin4.png")
    xy = np.loadtxt(DATA / "empiar10017_crop_bin4.csv", delimiter=",", skiprows=1)
    return micrograph.image, xy[:, ::-1].copy()


def user_references(image, truth, n=15, seed=0):
    """15 clear particles and 15 empty spots on the left half, as a careful user boxes them."""
    rng = np.random.default_rng(seed)
    half = image.shape[1] // 2
    tree = cKDTree(truth)
    neighbour = tree.query(truth, k=2)[0][:, 1]
    margin = BOX_PX / 2
    usable = (
        (truth[:, 1] < half - margin)
        & (truth >= margin).all(1)
        & (truth[:, 0] < image.shape[0] - margin)
    )
    clear = np.flatnonzero(usable & (neighbour > DIAMETER_PX))
    good = truth[rng.choice(clear, n, replace=False)]
    background = []
    while len(background) < n:
        spot = rng.uniform([margin, margin], [image.shape[0] - margin, half - margin])
        if tree.query(spot)[0] > DIAMETER_PX:
            background.append(spot)
    return good, np.asarray(background)


@pytest.fixture(scope="module")
def picked(crop):
    image, truth = crop
    good, background = user_references(image, truth)
    half = image.shape[1] // 2
    references = collect_references(
        [image[:, :half]], [good], [background], box_px=BOX_PX, pixel_sizes=1.0
    )
    model = train_boxer(references, epochs=8, samples_per_class=300, seed=0)
    right = image[:, half:]
    inner = truth[truth[:, 1] >= half] - [0, half]
    return model, autopick(model, right), right, inner


def test_trains_and_picks_real_particles(picked):
    model, result, right, truth = picked
    assert model.info.counts == {"good": 15, "background": 15, "bad": 0}
    good, background = (
        model.info.reference_scores["good"],
        model.info.reference_scores["background"],
    )
    assert background < model.info.score_threshold < good
    assert result.score_threshold == model.info.score_threshold  # the calibrated default
    match = match_points(result.picks.coordinates, truth, DIAMETER_PX / 2)
    # the same number of picks at random places: what chance reaches here
    rng = np.random.default_rng(1)
    chance = [
        match_points(
            rng.uniform(BOX_PX / 2, np.asarray(right.shape) - BOX_PX / 2, (len(result.picks), 2)),
            truth,
            DIAMETER_PX / 2,
        )
        for _ in range(5)
    ]
    chance_precision = max(m.precision for m in chance)
    chance_recall = max(m.recall for m in chance)
    # crowded: random picks land near a particle often (precision ~0.45, recall ~0.34 here); the
    # boxer reaches ~0.85 and ~0.65 with these references on any of seeds 0-2
    assert match.precision > 0.7 and match.precision > chance_precision + 0.2
    assert match.recall > 0.55 and match.recall > chance_recall + 0.2


def test_count_readout_matches_the_picks(picked):
    model, result, right, _ = picked
    assert result.count_at(result.score_threshold) == len(result.candidates)
    assert np.all(np.diff(result.peak_scores) <= 0)
    wanted = len(result.candidates) // 2
    fewer = autopick(model, right, score_threshold=result.threshold_for_count(wanted))
    assert len(fewer.candidates) == wanted
    assert set(map(tuple, fewer.candidates.coordinates)) <= set(
        map(tuple, result.candidates.coordinates)
    )


# --- notebook 05 on the real crop, before any reference is boxed ------------------------------


@pytest.mark.notebook
def test_notebook_05_run_all_before_boxing_says_what_to_do(tmp_path):
    """Run All on a real micrograph with no boxes yet: no error, the widget says what to box."""
    from test_notebooks import execute_notebook, printed, widgets

    parameters = {
        "MICROGRAPHS": [str(DATA / "empiar10017_crop_bin4.png")],
        "BOX_PX": round(BOX_PX),
        "TRUTH": str(DATA / "empiar10017_crop_bin4.csv"),
        "HEADLESS": False,
    }
    notebook = execute_notebook("05_particle_picking_2d", parameters, tmp_path / "work")
    errors = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
    text = printed(notebook)
    assert "Box at least 5 more good particle(s) and 5 more background box(es)" in text
    assert "no model yet" in text and "nothing picked yet" in text
    assert "references on 1, picking empiar10017_crop_bin4" in text
    assert widgets(notebook) >= 1  # the box picker, where the message is shown too
    assert not (tmp_path / "work" / "micrographs" / "ribosome.boxer").exists()
