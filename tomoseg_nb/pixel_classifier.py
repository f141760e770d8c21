"""Random-forest pixel classifier on multiscale filters: the ilastik-style baseline for the networks.

Trained on exactly the tiles a network would be trained on (painted pixels of the positive tiles are
the feature, every other tile pixel is background), applied slice by slice. It is the yardstick the
CNN has to beat in ``tomoseg-nb evaluate --method rf``.

It stays a single-slice (2D) baseline: z context ("2.5D", ``TrainingConfig.z_context``) is a
network option and is refused here rather than approximated, so the yardstick does not change
with a setting it does not implement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from skimage.feature import multiscale_basic_features

from .errors import BadInputError
from .preprocess import Recipe, preprocess_slab, upsample_to

if TYPE_CHECKING:
    from sklearn.ensemble import RandomForestClassifier

SIGMA_MIN = 1.0
SIGMA_MAX = 16.0
MAX_TRAINING_PIXELS = 200_000  # random subsample; forests gain little beyond this and cost memory


@dataclass
class PixelClassifier:
    """A fitted random forest with the filter bank it expects."""

    forest: RandomForestClassifier | None  # None until fitted (train_pixel_classifier)
    sigma_min: float = SIGMA_MIN
    sigma_max: float = SIGMA_MAX
    feature_options: dict = field(default_factory=dict)

    def features(self, image: np.ndarray) -> np.ndarray:
        """``(y, x, n_filters)`` multiscale intensity, edge and texture filters of one slice."""
        return multiscale_basic_features(
            image, sigma_min=self.sigma_min, sigma_max=self.sigma_max, **self.feature_options
        )

    def predict_slices(self, slices: np.ndarray) -> np.ndarray:
        """Probability of the feature, ``(n, y, x)`` float32 in [0, 1]."""
        if self.forest is None:
            raise BadInputError(
                "the pixel classifier is not fitted; train_pixel_classifier fits one"
            )
        maps = np.empty(slices.shape, np.float32)
        for index, image in enumerate(slices):
            filters = self.features(image)
            flat = filters.reshape(-1, filters.shape[-1])
            maps[index] = self.forest.predict_proba(flat)[:, 1].reshape(image.shape)
        return maps


def train_pixel_classifier(
    images: np.ndarray,
    masks: np.ndarray,
    positive: np.ndarray,
    *,
    n_estimators: int = 100,
    max_depth: int | None = 12,
    seed: int = 0,
) -> PixelClassifier:
    """Fit a random forest on tile pixels: painted pixels are the feature, the rest background.

    Parameters
    ----------
    images : ndarray
        ``(n, size, size)`` preprocessed tiles.
    masks : ndarray
        ``(n, size, size)`` painted masks; ignored (all background) for negative tiles.
    positive : ndarray
        ``(n,)`` bool, which tiles contain the feature.

    Raises
    ------
    BadInputError
        No painted pixel, or tiles with z context (``(n, size, size, c)``), which this 2D
        baseline does not use.
    """
    from sklearn.ensemble import RandomForestClassifier

    images = np.asarray(images, np.float32)
    if images.ndim != 3:
        raise BadInputError(
            f"the random forest takes single-slice (n, size, size) tiles, got shape "
            f"{images.shape}; it has no z context and one channel per slice (cut the tiles with "
            "z_context=0 and a recipe without extra_lowpass)"
        )
    labels = np.asarray(masks, bool) & np.asarray(positive, bool)[:, None, None]
    if not labels.any():
        raise BadInputError(
            "no painted feature pixels in the tiles; paint the feature on the positive tiles"
        )
    classifier = PixelClassifier(forest=None)
    filters = np.stack([classifier.features(image) for image in images])
    x = filters.reshape(-1, filters.shape[-1])
    y = labels.reshape(-1)
    rng = np.random.default_rng(seed)
    if len(y) > MAX_TRAINING_PIXELS:
        keep = rng.choice(len(y), MAX_TRAINING_PIXELS, replace=False)
        x, y = x[keep], y[keep]
    classifier.forest = RandomForestClassifier(
        n_estimators=n_estimators,
        max_depth=max_depth,
        class_weight="balanced",
        n_jobs=-1,
        random_state=seed,
    ).fit(x, y)
    return classifier


def classifier_maps(
    classifier: PixelClassifier, recipe: Recipe, slab: np.ndarray
) -> list[np.ndarray]:
    """Preprocess raw slices with ``recipe`` and classify them; the ``segment`` writer's compute step."""
    prepared = preprocess_slab(np.asarray(slab, np.float32), recipe)
    return [upsample_to(classifier.predict_slices(prepared), recipe.binning, slab.shape[-2:])]
