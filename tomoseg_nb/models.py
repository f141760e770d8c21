"""Per-feature networks: the architectures, the EMAN2 loss, and saving with a JSON sidecar.

Every architecture is fully convolutional (input ``(None, None, c)``: one channel, or ``2k + 1``
for a network trained with z context ``k``, the slices ``z - k .. z + k``), built only from
``Conv2D`` (ReLU or linear) and ``MaxPooling2D`` layers, so the convolution engine can run it by
FFT or in tiles. A saved model is two files: ``MODEL.keras`` (Keras format, loaded with
``safe_mode=True``) and ``MODEL.json``, the sidecar that says what the network segments and how
its input must be prepared (a network's z context is in ``training["config"]``)::

    {"format": "tomoseg_nb.model", "format_version": 1, "feature": "membrane", "arch": "eman2",
     "voxel_size": 10.0, "recipe": {...}, "threshold": 0.5, "tile_size": 64, "output_stride": 2,
     "history": {"loss": [...], "val_loss": [...]}, "training": {...}, "versions": {...},
     "created": "2025-01-01T12:00:00+00:00", "tomoseg_nb_version": "0.1.0"}
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from . import __version__
from .atomic import atomic_output, check_output_path
from .errors import BadInputError, first_line
from .maps import validate_feature_name
from .model_files import check_model_file, sidecar_path
from .preprocess import Recipe
from .training_config import DEFAULT_ARCH

FORMAT = "tomoseg_nb.model"
FORMAT_VERSION = 1


IGNORE = -1.0
"""Training label of a pixel whose class is unknown: it adds nothing to the loss (Ais: label 2)."""


@keras.saving.register_keras_serializable(package="tomoseg_nb", name="eman2_loss")
def eman2_loss(y_true: Any, y_pred: Any) -> Any:
    """EMAN2 tomoseg's loss, ``log(mean((y - min(yhat, 1))^2))`` over the whole batch.

    Outputs above 1 are not penalised (a confident "yes" is never wrong); the log makes the
    gradient scale-free, so training keeps improving when the error is already small. A 1e-10 floor
    keeps the log finite on a perfect batch. Pixels labelled ``IGNORE`` (negative) are left out
    of the mean, so a tile can teach only the pixels whose class is known.
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    known = ops.cast(y_true >= 0.0, y_pred.dtype)
    error = known * ops.square(ops.maximum(y_true, 0.0) - ops.minimum(y_pred, 1.0))
    return ops.log(ops.sum(error) / ops.maximum(ops.sum(known), 1.0) + 1e-10)


@dataclass(frozen=True)
class Architecture:
    """A named network design: a builder plus the training settings that suit it.

    Calling it builds a fresh model: ``ARCHITECTURES["eman2"](seed=0)``; ``channels`` input
    channels (``2k + 1`` with z context ``k``) change only the first layer's kernels.
    """

    name: str
    description: str
    learning_rate: float
    builder: Callable[[int | None, int], keras.Model]

    def __call__(self, seed: int | None = None, channels: int = 1) -> keras.Model:
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise BadInputError(f"input channels must be a whole number >= 1, got {channels!r}")
        return self.builder(seed, channels)


def _stack(
    name: str,
    convolutions: list[tuple[int, int]],
    pool_after: int,
    initializer: Callable[[int | None], keras.initializers.Initializer],
    seed: int | None,
    channels: int = 1,
) -> keras.Model:
    """``(filters, kernel)`` ReLU convolutions with one 2x2 max-pool, then a linear 1-channel conv."""
    inputs = keras.Input((None, None, channels), name="slice")
    x = inputs
    for index, (filters, kernel) in enumerate(convolutions):
        last = index == len(convolutions) - 1
        x = layers.Conv2D(
            filters,
            kernel,
            padding="same",
            activation=None if last else "relu",
            kernel_initializer=initializer(None if seed is None else seed + index),
            bias_initializer="zeros",
            name=f"conv{index}",
        )(x)
        if index == pool_after:
            x = layers.MaxPooling2D(2, name="pool")(x)
    return keras.Model(inputs, x, name=name)


def _build_eman2(seed: int | None, channels: int = 1) -> keras.Model:
    def initializer(s: int | None) -> keras.initializers.Initializer:
        return keras.initializers.TruncatedNormal(stddev=0.01, seed=s)

    return _stack("eman2", [(40, 15), (40, 15), (1, 15)], 0, initializer, seed, channels)


def _build_fast(seed: int | None, channels: int = 1) -> keras.Model:
    he = keras.initializers.HeNormal
    return _stack("fast", [(16, 7), (32, 7), (32, 7), (1, 7)], 0, he, seed, channels)


def _build_tiny(seed: int | None, channels: int = 1) -> keras.Model:
    return _stack("tiny", [(8, 5), (16, 5), (1, 5)], 0, keras.initializers.HeNormal, seed, channels)


ARCHITECTURES: dict[str, Architecture] = {
    "eman2": Architecture(
        "eman2",
        "EMAN2 tomoseg: Conv 40x15x15 ReLU, MaxPool 2, Conv 40x15x15 ReLU, Conv 1x15x15; "
        "101k multiply-adds per input pixel, receptive field 72 px",
        1e-4,
        _build_eman2,
    ),
    "fast": Architecture(
        "fast",
        "Conv 16x7x7 ReLU, MaxPool 2, Conv 32x7x7 ReLU, Conv 32x7x7 ReLU, Conv 1x7x7; one more "
        "non-linear layer than eman2 at a fifth of its arithmetic (20k multiply-adds per input "
        "pixel), receptive field 44 px, He initialisation, Adam 1e-3",
        1e-3,
        _build_fast,
    ),
    "tiny": Architecture(
        "tiny",
        "Conv 8x5x5 ReLU, MaxPool 2, Conv 16x5x5 ReLU, Conv 1x5x5; trains in seconds on a CPU "
        "(teaching, smoke tests); receptive field 22 px",
        3e-3,
        _build_tiny,
    ),
}


def get_architecture(arch: str) -> Architecture:
    """The architecture called ``arch``; a clear error lists the known names."""
    if arch not in ARCHITECTURES:
        raise BadInputError(
            f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}"
        )
    return ARCHITECTURES[arch]


def build_model(
    arch: str = DEFAULT_ARCH, *, seed: int | None = None, channels: int = 1
) -> keras.Model:
    """A freshly initialised network of architecture ``arch`` (same seed, same weights).

    ``channels`` is the number of input channels: 1 for single slices, ``2k + 1`` for a network
    with z context ``k`` (``TrainingConfig.input_channels``).
    """
    return get_architecture(arch)(seed, channels)


def input_channels(model: keras.Model) -> int:
    """Input channels a network expects: 1, or ``2k + 1`` for one trained with z context ``k``."""
    return int(model.input_shape[-1])


def output_stride(model: keras.Model) -> int:
    """How many input pixels one output pixel spans (2 for every built-in architecture)."""
    stride = 1
    for layer in model.layers:
        strides = getattr(layer, "strides", None)
        if strides is not None:
            stride *= int(strides[0])
    return stride


def receptive_field(model: keras.Model) -> int:
    """Full width, in input pixels, of the input window that one output pixel depends on.

    A tile of a slice must overlap its neighbours by half of this on each side for tiled
    application to equal whole-slice application.
    """
    field_px, jump = 1, 1
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            span = (int(layer.kernel_size[0]) - 1) * int(layer.dilation_rate[0]) + 1
        elif isinstance(layer, layers.MaxPooling2D):
            span = int(layer.pool_size[0])
        else:
            continue
        field_px += (span - 1) * jump
        jump *= int(layer.strides[0])
    return field_px


def probability(raw_output: Any) -> np.ndarray:
    """Network output to probability: clip to [0, 1] (as EMAN2 zeroes negatives), float32."""
    return np.clip(np.asarray(raw_output, dtype=np.float32), 0.0, 1.0)


def _versions() -> dict[str, str]:
    return {
        "tomoseg_nb": __version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "numpy": np.__version__,
    }


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass
class ModelInfo:
    """What a trained network segments and how to feed it; stored as the JSON sidecar.

    Attributes
    ----------
    feature : str
        Feature name (e.g. ``"membrane"``).
    arch : str
        Architecture name (a key of ``ARCHITECTURES``).
    voxel_size : float
        Angstrom per pixel of the *network input*: the source voxel size times ``recipe["binning"]``.
    recipe : dict
        ``Recipe.to_dict()`` of the preprocessing it was trained with.
    threshold : float
        Probability above which a voxel counts as the feature (0.5 unless a user sets it).
    tile_size : int
        Annotation tile size, source voxels.
    output_stride : int
        Input pixels per output pixel.
    history : dict
        Loss per epoch (``loss``, ``val_loss``).
    training : dict
        How it was trained: tile counts, seed, epochs, engine, seconds.
    versions : dict
        Versions of tomoseg_nb, Keras, its backend and numpy.
    """

    feature: str
    arch: str
    voxel_size: float
    recipe: dict[str, Any]
    threshold: float = 0.5
    tile_size: int = 64
    output_stride: int = 2
    history: dict[str, list[float]] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=_versions)
    created: str = field(default_factory=_now)
    tomoseg_nb_version: str = __version__
    format_version: int = FORMAT_VERSION

    @property
    def z_context(self) -> int:
        """Neighbouring slices on each side the network sees (``TrainingConfig.z_context``).

        Read from the recorded training config (``training["config"]["z_context"]``), so
        ``segment`` feeds a saved network the stacks it was trained on without being told; a
        sidecar written before the option existed (or without a config) means 0, the plain 2D
        network.
        """
        config = self.training.get("config") if isinstance(self.training, dict) else None
        value = config.get("z_context", 0) if isinstance(config, dict) else 0
        return int(value or 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the ``format`` marker."""
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "model sidecar") -> ModelInfo:
        """Validate and build from ``to_dict`` output; problems raise BadInputError naming ``source``."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BadInputError(
                f'{source}: not a tomoseg_nb model sidecar (no "format": "{FORMAT}")'
            )
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise BadInputError(
                f"{source}: model format version {version!r}; this tomoseg_nb reads version "
                f"{FORMAT_VERSION} (retrain the model or use the tomoseg_nb that made it)"
            )
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        try:
            info = cls(**values)
            info.voxel_size = float(info.voxel_size)
            info.threshold = float(info.threshold)
            info.output_stride = int(info.output_stride)
            info.tile_size = int(info.tile_size)
            z_context = info.z_context
        except (TypeError, ValueError, AttributeError) as error:
            raise BadInputError(f"{source}: malformed model sidecar ({error})") from error
        if not isinstance(info.recipe, dict) or not info.feature or not info.voxel_size > 0:
            raise BadInputError(f"{source}: sidecar lacks a feature, voxel size or recipe")
        if z_context < 0:
            raise BadInputError(f"{source}: z context {z_context} in the sidecar is negative")
        # The feature names output files (DIR/<tomogram>__<feature>.mrc): no '../' may escape DIR.
        try:
            validate_feature_name(info.feature)
        except BadInputError as error:
            raise BadInputError(f"{source}: {error}") from None
        return info


def save_model(
    model: keras.Model, info: ModelInfo, path: str | os.PathLike, *, overwrite: bool = False
) -> Path:
    """Write ``MODEL.keras`` and its ``MODEL.json`` sidecar atomically; returns the ``.keras`` path.

    Raises
    ------
    BadInputError
        ``path`` does not end in ``.keras``.
    OutputExistsError
        Either file exists and ``overwrite`` is False (checked before anything is written).
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise BadInputError(f"{path}: a model file must end in .keras")
    sidecar = sidecar_path(path)
    check_output_path(path, overwrite)
    check_output_path(sidecar, overwrite)
    text = json.dumps(info.to_dict(), indent=2) + "\n"
    with atomic_output(sidecar, overwrite=overwrite) as tmp_json:
        tmp_json.write_text(text, encoding="utf-8")
        with atomic_output(path, overwrite=overwrite) as tmp_model:
            # Keras insists on the .keras suffix; save beside the temporary name, then move it.
            named = tmp_model.with_name(tmp_model.name + ".keras")
            try:
                model.save(named)
                os.replace(named, tmp_model)
            finally:
                named.unlink(missing_ok=True)
    return path


def load_keras_file(path: str | os.PathLike) -> keras.Model:
    """Load a ``.keras`` file in Keras safe mode: a file carrying Python code is refused, not run.

    Models are shared on hubs and by e-mail; safe mode rebuilds only registered layers, so a
    ``Lambda`` layer or custom object in a downloaded file cannot execute anything on loading.

    Raises
    ------
    BadInputError
        The file is not a Keras archive, is damaged, or holds code (Lambda layers, unknown objects).
    """
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for foreign or damaged archives
        text = str(error)
        if any(word in text for word in ("Lambda", "safe_mode", "Could not locate")):
            raise BadInputError(
                f"{path}: holds a Lambda layer or custom code, which is refused for safety (Keras "
                "safe mode); only networks made by tomoseg_nb load: retrain it with tomoseg_nb"
            ) from error
        raise BadInputError(f"{path}: not a loadable Keras model ({first_line(error)})") from error


def load_model(path: str | os.PathLike) -> tuple[keras.Model, ModelInfo]:
    """Load ``MODEL.keras`` (Keras safe mode) and its sidecar ``MODEL.json``.

    Raises
    ------
    MissingInputError
        The model file does not exist.
    BadInputError
        The sidecar is missing, foreign, corrupt or of another format version, or the ``.keras``
        file is not a loadable Keras model, or the two disagree.
    """
    path = check_model_file(path)
    sidecar = sidecar_path(path)
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise BadInputError(f"{sidecar}: not readable JSON ({error})") from error
    info = ModelInfo.from_dict(data, source=str(sidecar))
    model = load_keras_file(path)
    if output_stride(model) != info.output_stride:
        raise BadInputError(
            f"{path}: the network has output stride {output_stride(model)} but its sidecar says "
            f"{info.output_stride}; the two files do not belong together"
        )
    per_slice = Recipe.from_dict(info.recipe).channels_per_slice
    expected = (2 * info.z_context + 1) * per_slice
    if input_channels(model) != expected:
        raise BadInputError(
            f"{path}: the network takes {input_channels(model)} input channel(s) but its sidecar "
            f"says z context {info.z_context} with {per_slice} channel(s) per slice ({expected} "
            "channels); the two files do not belong together"
        )
    return model, info
