"""2D CNN particle picker for micrographs (EMAN2 e2boxer "CNN v2" re-created), with a baseline.

From 10-15 boxed examples each of good particles, empty background and bad things (contamination,
aggregates), train a picker network (good vs background) and a classifier network (good vs bad),
then autopick whole micrographs. Template matching with the same references is the baseline.

Typical use::

    refs = collect_references(micrographs, good, background, bad, box_px=96, pixel_sizes=1.06)
    model = train_boxer(refs)
    save_boxer(model, "ribosome.boxer")
    result = autopick(model, micrograph)   # result.picks, result.candidates, both scores

Modules: ``preprocess`` (working scale, filters), ``references`` (boxes from coordinates),
``augment``, ``networks``, ``train``, ``peaks`` (shared peak finding), ``pick`` (autopicking),
``template`` (baseline), ``model`` (save / load), ``files`` (micrographs, coordinate and pick
files). No module shares a name with a function, so ``from tomoseg_nb.boxer import autopick``
gives the function.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_PUBLIC = {
    "BoxerRecipe": "preprocess",
    "prepare_micrograph": "preprocess",
    "References": "references",
    "MIN_REFERENCES": "references",
    "collect_references": "references",
    "extract_boxes": "references",
    "augment_boxes": "augment",
    "build_picker": "networks",
    "build_classifier": "networks",
    "train_boxer": "train",
    "find_peaks": "peaks",
    "AutopickResult": "pick",
    "autopick": "pick",
    "autopick_micrographs": "pick",
    "picker_map": "pick",
    "rotated_templates": "template",
    "template_score_map": "template",
    "read_micrograph": "files",
    "coordinates_per_micrograph": "files",
    "write_micrograph_picks": "files",
    "BoxerInfo": "model",
    "BoxerModel": "model",
    "save_boxer": "model",
    "load_boxer": "model",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _PUBLIC)
