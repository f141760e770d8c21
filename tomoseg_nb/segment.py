"""Apply feature networks to whole tomograms, slab by slab, into probability maps on disk.

The tomogram is read from its memory map a few slices at a time; each slice is preprocessed with the
recipe the network was trained with, run through ``engine.predict_slices`` (which tiles large slices
with enough overlap that the result equals whole-slice application), clipped to [0, 1] and
upsampled back to the tomogram's full size. Outputs are streamed into memory-mapped MRC files that
appear only when complete, carrying the source voxel size and origin. Peak memory is a few slabs of
slices plus the engine's per-slice working set, independent of the tomogram's depth.

A network trained with z context ``k`` (its sidecar's ``training["config"]["z_context"]``) gets,
for each slice, the stack of slices ``z - k .. z + k`` as channels, each preprocessed on its own,
mirrored at the tomogram's ends exactly as its training tiles were (``preprocess.context_indices``);
each slab is read with ``k`` extra slices on either side for that. The user never repeats the
option: it travels with the model.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .atomic import check_output_path
from .errors import BadInputError, CancelledError
from .maps import check_stored_dtype, encode_probabilities, map_path
from .preprocess import Recipe, preprocess_slab, stack_z_context, upsample_to, z_window
from .progress import ProgressCallback, progress_bar
from .volume import Volume, create_volume, open_volume

if TYPE_CHECKING:
    from .models import ModelInfo

VOXEL_SIZE_TOLERANCE = 0.05  # relative; tomograms reconstructed by different tools disagree by ~1%


@dataclass
class FeatureNetwork:
    """A trained network with what is needed to apply it: its metadata and preprocessing."""

    model: Any  # keras.Model: Keras is imported only when a network is built or loaded
    info: ModelInfo

    @property
    def feature(self) -> str:
        return self.info.feature

    @property
    def z_context(self) -> int:
        """Neighbouring slices on each side the network takes as channels (0: a 2D network)."""
        return self.info.z_context

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureNetwork:
        from .models import load_model

        model, info = load_model(path)
        return cls(model, info)


def as_networks(models: Sequence[FeatureNetwork | str | os.PathLike]) -> list[FeatureNetwork]:
    """Load the models given as paths; refuse none, or two for one feature."""
    networks = [m if isinstance(m, FeatureNetwork) else FeatureNetwork.load(m) for m in models]
    if not networks:
        raise BadInputError("no models given; pass at least one trained MODEL.keras")
    names = [n.feature for n in networks]
    if len(set(names)) != len(names):
        raise BadInputError(
            f"two models segment the same feature ({names}); give one model per feature"
        )
    return networks


def input_binning(info: ModelInfo, voxel_size: float) -> int:
    """How much to bin a tomogram of ``voxel_size`` so it matches what the network was trained on.

    A model trained at 20 A/voxel applied to a 10 A/voxel tomogram bins by 2 (with a warning); a
    mismatch that is not an integer factor is refused, since silently applying a network at the wrong
    scale gives plausible-looking but wrong maps.
    """
    trained = float(info.voxel_size)
    ratio = trained / voxel_size
    factor = max(1, round(ratio))
    if abs(ratio - factor) > VOXEL_SIZE_TOLERANCE * factor:
        raise BadInputError(
            f"model '{info.feature}' was trained at {trained:g} A/voxel but the tomogram is "
            f"{voxel_size:g} A/voxel; resample the tomogram to {trained:g} A/voxel (or an integer "
            "fraction of it) first, or retrain on data at this voxel size"
        )
    if factor > 1:
        warnings.warn(
            f"model '{info.feature}' was trained at {trained:g} A/voxel; binning the "
            f"{voxel_size:g} A/voxel tomogram by {factor} to match",
            stacklevel=3,
        )
    return factor


def probability_slices(
    networks: Sequence[FeatureNetwork],
    slices: np.ndarray,
    *,
    voxel_size: float,
    engine: str = "auto",
    context: int = 0,
) -> list[np.ndarray]:
    """Probability maps ``(n, y, x)`` in [0, 1] of each network on raw (unfiltered) slices.

    Networks that share a preprocessing recipe, binning and z context share the preprocessed
    input, and the engine shares the input's transform between them.

    ``slices`` holds ``context`` extra slices on each side of the ``n`` to segment (``n + 2
    context`` in all; ``z_window`` says which, mirrored at the tomogram's ends): a network with z
    context ``k`` needs ``k <= context``. Maps are of the ``n`` middle slices.

    Raises
    ------
    BadInputError
        A network needs more neighbouring slices than ``context`` gives.
    """
    from . import engine as engine_module
    from .models import output_stride, probability

    slices = np.asarray(slices, dtype=np.float32)
    if isinstance(context, bool) or not isinstance(context, int) or context < 0:
        raise BadInputError(f"context must be a whole number >= 0, got {context!r}")
    count = slices.shape[0] - 2 * context if slices.ndim == 3 else 0
    if count < 1:
        raise BadInputError(
            f"slices of shape {slices.shape} do not hold {context} context slice(s) on each "
            "side of at least one slice to segment"
        )
    for network in networks:
        if network.z_context > context:
            raise BadInputError(
                f"model '{network.feature}' was trained with z context {network.z_context}: it "
                f"needs {network.z_context} neighbouring slice(s) on each side, and only "
                f"{context} were given; pass them (context=...) or use segment_volume / "
                "segment_array, which read them"
            )
    shape = slices.shape[-2:]
    groups: dict[tuple, list[int]] = {}
    for index, network in enumerate(networks):
        recipe = Recipe.from_dict(network.info.recipe)
        extra = input_binning(network.info, voxel_size * recipe.binning)
        groups.setdefault((recipe, extra, network.z_context), []).append(index)
    results: list[np.ndarray | None] = [None] * len(networks)
    for (recipe, extra, z_context), members in groups.items():
        if extra > 1:
            recipe = dataclasses.replace(recipe, binning=recipe.binning * extra)
        window = slices[context - z_context : context + count + z_context]
        prepared = preprocess_slab(window, recipe)
        if z_context:
            prepared = stack_z_context(prepared, z_context)
        models = [networks[i].model for i in members]
        raw_maps = engine_module.predict_slices(models, prepared, engine=engine)
        for i, raw in zip(members, raw_maps, strict=True):
            factor = recipe.binning * output_stride(networks[i].model)
            results[i] = upsample_to(probability(raw), factor, shape)
    return results  # type: ignore[return-value]


def segment_volume(
    models: Sequence[FeatureNetwork | str | os.PathLike],
    volume: Volume | str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    out_paths: Sequence[str | os.PathLike] | None = None,
    engine: str = "auto",
    dtype: str = "float32",
    slab_size: int = 4,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> list[Path]:
    """Segment a whole tomogram with every network, writing one probability map per network.

    Parameters
    ----------
    models : sequence
        Trained networks (``FeatureNetwork`` or paths to ``MODEL.keras`` with their JSON sidecar).
    volume : Volume or path
        The tomogram; opened memory-mapped when a path is given.
    out_dir : path, optional
        Folder for ``<tomogram>__<feature>.mrc`` outputs (ignored when ``out_paths`` is given).
    out_paths : sequence of paths, optional
        Explicit output file per network.
    engine : {"auto", "keras", "fft"}
        Convolution engine (see ``tomoseg_nb.engine``).
    dtype : {"float32", "float16", "uint8"}
        Stored type (``maps.encode_probabilities``).
    slab_size : int
        Slices read and processed together; memory grows linearly with it.
    overwrite : bool
        Replace outputs that exist (otherwise refused before any work is done).
    progress : callable, optional
        ``callback(slices_done, total_slices)``.
    cancel : threading.Event, optional
        Set it to stop; no output file is left behind.

    Returns
    -------
    list of Path
        The written probability maps, in the order of ``models``.
    """
    networks = as_networks(models)
    with ExitStack() as stack:
        if not isinstance(volume, Volume):
            volume = stack.enter_context(open_volume(volume, ndim=3))
        if volume.ndim != 3:
            raise BadInputError(
                f"{volume.path}: segmentation needs a 3D tomogram, got shape {volume.shape}"
            )
        if out_paths is None:
            if out_dir is None:
                raise BadInputError("give an output folder (out_dir) or explicit out_paths")
            out_paths = [map_path(out_dir, volume.name, n.feature) for n in networks]
        if len(out_paths) != len(networks):
            raise BadInputError(f"{len(out_paths)} output paths for {len(networks)} models")
        context = max(network.z_context for network in networks)
        compute = partial(
            probability_slices,
            networks,
            voxel_size=volume.voxel_size,
            engine=engine,
            context=context,
        )
        return write_probability_maps(
            volume,
            out_paths,
            compute,
            dtype=dtype,
            slab_size=slab_size,
            overwrite=overwrite,
            progress=progress,
            cancel=cancel,
            description=f"segmenting {volume.name} ({', '.join(n.feature for n in networks)})",
            z_context=context,
        )


def write_probability_maps(
    volume: Volume,
    out_paths: Sequence[str | os.PathLike],
    compute: Callable[[np.ndarray], list[np.ndarray]],
    *,
    dtype: str = "float32",
    slab_size: int = 4,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    description: str | None = None,
    z_context: int = 0,
) -> list[Path]:
    """Stream ``compute(slab) -> [map per output]`` over a tomogram into probability-map files.

    Any pixel classifier (a network, the random-forest baseline) goes through this one writer, so
    every output has the same frame, dtype handling, atomicity and cancellation. ``description``
    is what the progress bar says (default: the tomogram's name). With ``z_context`` k, each slab
    given to ``compute`` has k more slices on either side (``preprocess.z_window``: mirrored at
    the tomogram's ends), and ``compute`` returns maps of the slab's middle slices only.
    """
    check_stored_dtype(dtype)
    if slab_size < 1:
        raise BadInputError(f"slab size must be at least 1, got {slab_size}")
    paths = [check_output_path(p, overwrite) for p in out_paths]
    with ExitStack() as stack:
        outputs = [
            stack.enter_context(
                create_volume(
                    path,
                    volume.shape,
                    np.dtype(dtype),
                    voxel_size=volume.voxel_size,
                    origin=volume.origin,
                    overwrite=overwrite,
                )
            )
            for path in paths
        ]
        depth = volume.shape[0]
        with progress_bar(
            depth, description or f"segmenting {volume.name}", progress, unit="slice"
        ) as advance:
            for start in range(0, depth, slab_size):
                if cancel is not None and cancel.is_set():
                    raise CancelledError(
                        f"segmentation of {volume.name} cancelled; no output was kept"
                    )
                stop = min(depth, start + slab_size)
                computed = compute(slab_with_context(volume, start, stop, z_context))
                for output, probabilities in zip(outputs, computed, strict=True):
                    output[start:stop] = encode_probabilities(probabilities, dtype)
                advance(stop - start)
    return paths


def slab_with_context(volume: Volume, start: int, stop: int, z_context: int) -> np.ndarray:
    """Slices ``[start, stop)`` with ``z_context`` neighbours on each side, mirrored at the ends.

    Reads only the slices ``preprocess.z_window`` names (clamped to the volume), so a slab's input
    is the same whoever reads it: ``segment_volume`` in order, or a distributed work unit alone.
    """
    if not z_context:
        return volume.slab(start, stop)
    indices = z_window(start, stop, z_context, volume.shape[0])
    low = int(indices.min())
    read = np.asarray(volume.slab(low, int(indices.max()) + 1))
    return read[indices - low]


def segment_array(
    models: Sequence[FeatureNetwork | str | os.PathLike],
    tomogram: np.ndarray,
    *,
    voxel_size: float,
    engine: str = "auto",
    slab_size: int = 4,
) -> list[np.ndarray]:
    """In-memory twin of ``segment_volume``: float32 probability maps of a small array."""
    networks = as_networks(models)
    tomogram = np.asarray(tomogram, dtype=np.float32)
    context = max(network.z_context for network in networks)
    if tomogram.ndim == 2:  # one slice: a z-context network sees it mirrored, i.e. repeated
        window = tomogram[None][z_window(0, 1, context, 1)]
        return [
            m[0]
            for m in probability_slices(
                networks, window, voxel_size=voxel_size, engine=engine, context=context
            )
        ]
    outputs = [np.empty(tomogram.shape, np.float32) for _ in networks]
    depth = tomogram.shape[0]
    for start in range(0, depth, slab_size):
        stop = min(depth, start + slab_size)
        window = tomogram[z_window(start, stop, context, depth)]
        for output, maps in zip(
            outputs,
            probability_slices(
                networks, window, voxel_size=voxel_size, engine=engine, context=context
            ),
            strict=True,
        ):
            output[start:stop] = maps
    return outputs
