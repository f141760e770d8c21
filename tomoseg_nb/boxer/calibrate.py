"""The picker's default threshold, calibrated from the references' own scores, and count readouts.

A fixed threshold in standard deviations of the map (e2boxer's) moves with how crowded a micrograph
is: the more particles, the larger the map's spread, the fewer picks. The picker is trained to
answer 1 at a particle centre and 0 on background, so its scores have a meaning of their own;
``calibrated_threshold`` places the default between what the network answers on the good and on the
background references, and ``threshold_for_count`` answers "I expect about N particles here".
"""

from __future__ import annotations

import numpy as np

CALIBRATION_FRACTION = 0.35
"""Where the default threshold sits between the background and the good references' scores.

Below the midpoint because the picker has seen its references: it scores new particles lower than
them. 0.35 put the threshold within 0.05 of the best one on each of the four EMPIAR-10017
development micrographs (the midpoint was 0.01-0.1 high); the simulated micrographs' best is
lower still."""


def reference_scores(picker, boxes: np.ndarray, working_box_px: int) -> np.ndarray:
    """Best picker score near the centre of each reference box (what the picker says about it).

    Parameters
    ----------
    picker : keras.Model
        The trained picker.
    boxes : numpy.ndarray
        ``(N, c, c)`` working-scale reference boxes with their margin (``References.good``...).
    working_box_px : int
        The working box; scores are taken within a quarter box of the centre.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` the highest smoothed map value within the centre disc of each box.
    """
    from .networks import PICKER_STRIDE
    from .pick import picker_score_map

    boxes = np.asarray(boxes, dtype=np.float32)
    if len(boxes) == 0:
        return np.zeros(0)
    import keras

    raw = keras.ops.convert_to_numpy(picker(boxes[..., None], training=False))[..., 0]
    size = raw.shape[-1]
    centre = (boxes.shape[-1] // 2 - 0.5) / PICKER_STRIDE
    grid = np.arange(size) - centre
    disc = grid[:, None] ** 2 + grid[None, :] ** 2 <= (working_box_px / 4 / PICKER_STRIDE) ** 2
    return np.array([picker_score_map(r)[disc].max() for r in raw], dtype=np.float64)


def calibrated_threshold(
    good_scores: np.ndarray,
    background_scores: np.ndarray,
    *,
    fraction: float = CALIBRATION_FRACTION,
) -> float:
    """A picker threshold between the background and the good references' scores.

    ``background + fraction * (good - background)`` with ``good`` the median score of the good
    references and ``background`` the median of the background ones: robust to a few odd boxes.

    Examples
    --------
    >>> calibrated_threshold(np.array([0.8, 0.9, 1.0]), np.array([0.0, 0.1, 0.2]), fraction=0.5)
    0.5
    """
    good = float(np.median(good_scores)) if len(good_scores) else 1.0
    background = float(np.median(background_scores)) if len(background_scores) else 0.0
    if not good > background:
        # The picker did not learn to tell them apart: fall back on its ideal answers.
        good, background = 1.0, 0.0
    return background + fraction * (good - background)


def threshold_for_count(scores: np.ndarray, count: int) -> float:
    """The threshold that keeps the ``count`` highest ``scores`` (a pick needs score >= it).

    Examples
    --------
    >>> threshold_for_count(np.array([0.9, 0.2, 0.5, 0.7]), 2)
    0.7
    """
    scores = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if count <= 0 or len(scores) == 0:
        return float(np.inf) if len(scores) else 0.0
    return float(scores[min(count, len(scores)) - 1])
