"""tomoseg_nb: segment cryo-electron tomograms with small per-feature networks, in Jupyter.

The workflow, each step a plain function on arrays or files (the widgets and the CLI call these):

- data: ``open_volume`` / ``write_volume`` (memory-mapped MRC, TIFF, OME-Zarr), ``Picks`` with
  ``read_picks`` / ``write_picks`` (RELION 5/4, copick, EMAN2, IMOD, CSV, .box), phantoms with
  ground truth (``simulate_tomogram``, ``simulate_micrograph``);
- annotate: ``Project`` (features, tiles, painted masks; autosaved);
- learn: ``Recipe`` (EMAN2 preprocessing), ``TrainingConfig`` (every training setting),
  ``build_model``, ``train_feature``, ``save_model`` / ``load_model``; a network's z context
  (neighbouring slices as channels) from ``context_indices`` / ``z_window`` / ``stack_z_context``;
- apply: ``segment_volume`` (slab-streamed, FFT engine), ``segment_volumes`` (Dask);
- maps on disk: ``MapName``, ``encode_probabilities`` / ``decode_probabilities`` (``maps``);
- after: ``merge_files`` / ``merge_competitive``, ``pick_map_file``, ``pick_particles``, ``pick_filaments``,
  ``mesh_from_map``; 2D picking in ``tomoseg_nb.boxer``; notebook widgets in ``tomoseg_nb.widgets``;
  figures in ``tomoseg_nb.plots``;
- score: ``evaluate`` (simulated annotator), ``iou``, ``dice``, ``match_points``;
  ``suggest_tiles`` (where to annotate next: the unsure places of a probability map).

Names are imported lazily, so ``import tomoseg_nb`` stays fast and does not start Keras; TensorFlow's
start-up log lines are kept quiet (``tomoseg_nb._quiet``).
"""

from __future__ import annotations

from . import _quiet
from ._lazy import lazy_exports

_quiet.install()  # before any submodule can load TensorFlow

__version__ = "0.1.0"

_PUBLIC = {
    # errors
    "TomosegError": "errors",
    "BadInputError": "errors",
    "MissingInputError": "errors",
    "OutputExistsError": "errors",
    "ProjectLockedError": "errors",
    "CancelledError": "errors",
    "EmptyResultWarning": "errors",
    # data
    "Volume": "volume",
    "open_volume": "volume",
    "write_volume": "volume",
    "MapName": "maps",
    "decode_probabilities": "maps",
    "encode_probabilities": "maps",
    "create_volume": "volume",
    "Picks": "coords",
    "read_picks": "coords",
    "write_picks": "coords",
    "simulate_tomogram": "synthetic",
    "write_tomogram_phantom": "synthetic",
    "simulate_micrograph": "synthetic",
    "LABEL_IDS": "synthetic",
    # annotations and learning
    "Project": "annotations",
    "Recipe": "preprocess",
    "preprocess_slice": "preprocess",
    "preprocess_slab": "preprocess",
    "context_indices": "preprocess",
    "z_window": "preprocess",
    "stack_z_context": "preprocess",
    "collect_tiles": "dataset",
    "build_training_set": "dataset",
    "ARCHITECTURES": "models",
    "DEFAULT_ARCH": "training_config",
    "TrainingConfig": "training_config",
    "EMAN2_RECIPE": "training_config",
    "build_model": "models",
    "ModelInfo": "models",
    "save_model": "models",
    "load_model": "models",
    "train_feature": "train",
    "train_on_tiles": "train",
    "predict_slices": "engine",
    # volume operations
    "FeatureNetwork": "segment",
    "segment_volume": "segment",
    "segment_array": "segment",
    "segment_volumes": "distributed",
    "open_cluster": "distributed",
    "merge_competitive": "merge",
    "merge_files": "merge",
    "read_label_names": "merge",
    "pick_map_file": "picking",
    "pick_particles": "picking",
    "pick_filaments": "picking",
    "mesh_from_map": "mesh",
    "write_mesh": "mesh",
    # evaluation
    "iou": "metrics",
    "dice": "metrics",
    "precision_recall_f1": "metrics",
    "match_points": "metrics",
    "evaluate": "evaluate",
    "simulate_annotation": "evaluate",
    "suggest_tiles": "suggest",
    "run_demo": "demo",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _PUBLIC)
