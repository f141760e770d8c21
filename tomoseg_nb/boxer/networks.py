"""The boxer's two networks: a fully convolutional particle picker and a good-vs-bad classifier.

The picker is a plain Conv2D / MaxPool2D / ReLU stack (EMAN2 e2boxer's layout: 15x15 kernels, one
2x pooling, linear output) so it applies to a whole micrograph of any size and ``engine`` can run it
with FFT convolutions. Trained to answer a Gaussian bump at a particle's centre and zero on
background (and bad boxes), its output is a map whose peaks are the picks. The classifier sees one
box at a time and
says whether it holds a good particle or something to reject (contamination, an aggregate, carbon).
"""

from __future__ import annotations

import numpy as np

PICKER_STRIDE = 2
"""The picker's output is at half the working resolution (one 2x pooling)."""


def build_picker(filters: tuple[int, int] = (8, 8), kernel_px: int = 9, *, seed: int | None = None):
    """Fully convolutional picker: Conv(f1, k, ReLU) -> MaxPool(2) -> Conv(f2, k, ReLU) -> Conv(1, k).

    Parameters
    ----------
    filters : tuple of int
        Channels of the two hidden layers. EMAN2 uses 20 and 20 with 15x15 kernels; 8 and 8 with
        9x9 kernels pick as well on the benchmark phantoms (receptive field 41 working pixels, more
        than the 32 px working box) at about a tenth of the arithmetic, which is what lets a 4k x 4k
        micrograph be picked in about a second on two CPU cores.
    kernel_px : int
        Kernel side (odd).
    seed : int, optional
        Seed of the weight initialisation.

    Returns
    -------
    keras.Model
        Input ``(None, None, 1)``, output ``(None, None, 1)`` at half resolution.
    """
    import keras

    def init(offset: int):
        return keras.initializers.TruncatedNormal(
            stddev=0.01, seed=None if seed is None else seed + offset
        )

    inputs = keras.Input((None, None, 1), name="micrograph")
    x = keras.layers.Conv2D(
        filters[0], kernel_px, padding="same", activation="relu", kernel_initializer=init(0)
    )(inputs)
    x = keras.layers.MaxPooling2D(PICKER_STRIDE)(x)
    x = keras.layers.Conv2D(
        filters[1], kernel_px, padding="same", activation="relu", kernel_initializer=init(1)
    )(x)
    outputs = keras.layers.Conv2D(1, kernel_px, padding="same", kernel_initializer=init(2))(x)
    return keras.Model(inputs, outputs, name="boxer_picker")


def build_classifier(box_px: int, filters: tuple[int, int] = (8, 8), *, seed: int | None = None):
    """Box classifier: two 7x7 convolutions, each pooled 2x, then a dense sigmoid unit.

    It runs only on the picker's candidates, boxes of a known size, so a dense layer can weigh where
    in the box things are (a particle centred vs the rim of a contamination blob).

    Parameters
    ----------
    box_px : int
        Side of the (working-scale) boxes it classifies.
    filters : tuple of int
        Channels of the two convolution layers.
    seed : int, optional
        Seed of the weight initialisation.

    Returns
    -------
    keras.Model
        Input ``(box_px, box_px, 1)``, output ``(1,)``: probability that the box is a good particle.
    """
    import keras

    def init(offset: int):
        return keras.initializers.GlorotUniform(seed=None if seed is None else seed + offset)

    inputs = keras.Input((box_px, box_px, 1), name="box")
    x = keras.layers.Conv2D(
        filters[0], 7, padding="same", activation="relu", kernel_initializer=init(0)
    )(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(
        filters[1], 7, padding="same", activation="relu", kernel_initializer=init(1)
    )(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.3, seed=seed)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", kernel_initializer=init(2))(x)
    return keras.Model(inputs, outputs, name="boxer_classifier")


def picker_targets(shifts_yx: np.ndarray | None, count: int, box_px: int) -> np.ndarray:
    """Picker targets: a unit Gaussian at each (shifted) particle centre, at the output resolution.

    ``shifts_yx=None`` gives all-zero targets (background). The Gaussian's sigma is the box / 6.4
    in working pixels (EMAN2: 5 output px for a 64 px box), so neighbouring particles' bumps stay
    apart.

    Returns
    -------
    numpy.ndarray
        float32 ``(count, box_px // 2, box_px // 2, 1)``.
    """
    size = box_px // PICKER_STRIDE
    targets = np.zeros((count, size, size, 1), np.float32)
    if shifts_yx is None:
        return targets
    sigma = box_px / 6.4 / PICKER_STRIDE
    # Output pixel j covers input pixels 2j and 2j+1: its centre is input 2j + 0.5. The particle
    # sits at input pixel box_px // 2 (+ shift), as boxes are cut.
    grid = (np.arange(size) * PICKER_STRIDE + 0.5 - box_px // 2) / PICKER_STRIDE
    for i, (dy, dx) in enumerate(np.asarray(shifts_yx).reshape(-1, 2)):
        gy = np.exp(-((grid - dy / PICKER_STRIDE) ** 2) / (2 * sigma**2))
        gx = np.exp(-((grid - dx / PICKER_STRIDE) ** 2) / (2 * sigma**2))
        targets[i, :, :, 0] = np.outer(gy, gx)
    return targets


def picker_weights(count: int, box_px: int, radius_px: float, outside: float = 0.0) -> np.ndarray:
    """Per-pixel loss weights of picker samples: 1 within ``radius_px`` of the box centre.

    A reference box says what lies at its centre only: around a boxed particle there are often
    unboxed neighbours (crowded micrographs have particles closer than a diameter), and around a
    boxed empty spot there may be particles too. Teaching zero there would teach the network to
    ignore particles, so the loss looks at the centre (``outside`` weighs the rest).

    Parameters
    ----------
    count : int
        Number of samples.
    box_px : int
        Working box side.
    radius_px : float
        Radius of the full-weight disc, working pixels.
    outside : float
        Weight of the rest of the box.

    Returns
    -------
    numpy.ndarray
        float32 ``(count, box_px // 2, box_px // 2)``.
    """
    size = box_px // PICKER_STRIDE
    grid = np.arange(size) * PICKER_STRIDE + 0.5 - box_px // 2
    distance = np.sqrt(grid[:, None] ** 2 + grid[None, :] ** 2)
    weights = np.where(distance <= radius_px, 1.0, outside).astype(np.float32)
    return np.broadcast_to(weights, (count, size, size)).copy()
