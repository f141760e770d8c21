"""JSON picks: copick, EMAN2 info files (``boxes_3d``) and CryoET Data Portal ndjson.

Grouped as JSON documents: ``_read_json`` reads copick and EMAN2 files (and lets ``formats`` tell
them apart), and copick and ndjson both store orientations as rotation matrices.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_json_atomic, write_text_atomic
from ..errors import BadInputError, OutputExistsError, first_line
from ._shared import _ReadContext, _voxel_size_for_angstrom
from .picks import Picks, euler_angles, rotation_matrices


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    # RecursionError: JSON nested thousands deep, which the decoder cannot follow
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise BadInputError(f"{path}: not valid JSON ({first_line(error)})") from error


def _write_copick(
    path: Path,
    picks: Picks,
    overwrite: bool,
    voxel_size: float | None = None,
    user_id: str = "tomoseg_nb",
    session_id: str = "0",
) -> None:
    if not picks.feature:
        raise BadInputError(
            f"{path}: copick needs the picked object's name; set picks.feature (e.g. 'ribosome')"
        )
    size = _voxel_size_for_angstrom(picks, voxel_size, path, "copick")
    transforms = np.tile(np.eye(4), (len(picks), 1, 1))
    if picks.orientations is not None:
        transforms[:, :3, :3] = rotation_matrices(picks.orientations)
    points = [
        {
            "location": dict(zip("xyz", map(float, location), strict=True)),
            "transformation_": transform.tolist(),
            "instance_id": 0,
            "score": float(score),
        }
        for location, transform, score in zip(
            picks.xyz * size, transforms, picks.score_values, strict=True
        )
    ]
    document = {
        "pickable_object_name": picks.feature,
        "user_id": user_id,
        "session_id": session_id,
        "run_name": picks.tomogram or None,
        "voxel_spacing": size,
        "unit": "angstrom",
        "points": points,
        "trust_orientation": picks.orientations is not None,
    }
    write_json_atomic(path, document, overwrite=overwrite)


def _read_copick(path: Path, context: _ReadContext) -> Picks:
    document = _read_json(path)
    if not isinstance(document, dict) or not isinstance(document.get("points", []), list):
        raise BadInputError(f"{path}: not a copick picks file (no 'points' list)")
    unit = document.get("unit", "angstrom")
    if unit != "angstrom":
        raise BadInputError(
            f"{path}: copick unit '{unit}' is not supported; locations must be in Angstrom"
        )
    size = context.voxel_size or document.get("voxel_spacing")
    if not size:
        raise BadInputError(
            f"{path}: copick file without voxel_spacing; pass voxel_size= to read it"
        )
    points = document.get("points") or []
    transforms = np.array(
        [p.get("transformation_", np.eye(4).tolist()) for p in points], dtype=np.float64
    )
    transforms = transforms.reshape(len(points), 4, 4)
    # copick: the particle centre is the location plus the transform's translation
    xyz = np.array([[p["location"][a] for a in "xyz"] for p in points], dtype=np.float64).reshape(
        -1, 3
    )
    xyz = (xyz + transforms[:, :3, 3]) / float(size)
    oriented = document.get("trust_orientation", False) or not np.allclose(
        transforms[:, :3, :3], np.eye(3)
    )
    return Picks.from_xyz(
        xyz,
        scores=np.array(
            [1.0 if p.get("score") is None else p["score"] for p in points], dtype=np.float64
        ),
        voxel_size=float(size),
        tomogram=document.get("run_name") or "",
        feature=document.get("pickable_object_name", ""),
        orientations=euler_angles(transforms[:, :3, :3]) if oriented and points else None,
    )


def _eman2_classes(info: dict) -> dict[int, str]:
    classes = {int(k): str(v.get("name", "")) for k, v in (info.get("class_list") or {}).items()}
    for box in info.get("boxes_3d") or []:
        if len(box) > 5:
            classes.setdefault(int(box[5]), "")
        else:
            classes.setdefault(0, "")
    return classes


def _write_eman2(
    path: Path,
    picks: Picks,
    overwrite: bool,
    voxel_size: float | None = None,
    box_size_px: int = 32,
    class_id: int | None = None,
) -> None:
    info = _read_json(path) if path.exists() else {}
    if not isinstance(info, dict):
        raise BadInputError(f"{path}: not an EMAN2 info file (expected a JSON object)")
    name = picks.feature or "particles"
    classes = _eman2_classes(info)
    same = [k for k, v in classes.items() if v == name] if class_id is None else [class_id]
    if class_id is None:
        class_id = same[0] if same else next(i for i in range(len(classes) + 1) if i not in classes)
    boxes = [b for b in info.get("boxes_3d") or [] if (int(b[5]) if len(b) > 5 else 0) != class_id]
    if len(boxes) < len(info.get("boxes_3d") or []) and not overwrite:
        raise OutputExistsError(
            f"{path}: already has boxes of class {class_id} ('{classes.get(class_id, name)}'); "
            "pass overwrite=True (--overwrite) to replace them"
        )
    xyz, box_size = picks.xyz, float(box_size_px)
    if "apix_unbin" in info:  # EMAN2 tomogram pipeline: unbinned pixels from the centre
        scale = _voxel_size_for_angstrom(picks, voxel_size, path, "EMAN2 (apix_unbin)") / float(
            info["apix_unbin"]
        )
        xyz = (xyz - picks._centre_xyz("EMAN2 boxes of an info file with apix_unbin")) * scale
        box_size *= scale
    boxes += [
        [*map(float, p), "tomoseg", float(s), int(class_id)]
        for p, s in zip(xyz, picks.score_values, strict=True)
    ]
    class_list = dict(info.get("class_list") or {})
    class_list[str(class_id)] = {"name": name, "boxsize": box_size}
    write_json_atomic(path, {**info, "boxes_3d": boxes, "class_list": class_list}, overwrite=True)


def _read_eman2(path: Path, context: _ReadContext, class_id: int | None = None) -> Picks:
    info = _read_json(path)
    if not isinstance(info, dict):
        raise BadInputError(f"{path}: not an EMAN2 info file (expected a JSON object)")
    classes = _eman2_classes(info)
    if class_id is None and context.feature is not None:
        matching = [k for k, v in classes.items() if v == context.feature]
        if not matching:
            raise BadInputError(
                f"{path}: no class named '{context.feature}'; it has {_describe(classes)}"
            )
        class_id = matching[0]
    if class_id is None and len(classes) > 1:
        raise BadInputError(
            f"{path}: has {len(classes)} classes ({_describe(classes)}); pass feature=NAME or class_id=N"
        )
    if class_id is None:
        class_id = next(iter(classes), 0)
    rows = [b for b in info.get("boxes_3d") or [] if (int(b[5]) if len(b) > 5 else 0) == class_id]
    xyz = np.array([b[:3] for b in rows], dtype=np.float64).reshape(-1, 3)
    scores = np.array([float(b[4]) if len(b) > 4 else 1.0 for b in rows], dtype=np.float64)
    size = context.voxel_size or 1.0
    if "apix_unbin" in info:
        centre, size = context.need_frame(path, "EMAN2 boxes (info file with apix_unbin)")
        xyz = xyz * float(info["apix_unbin"]) / size + centre
    return Picks.from_xyz(
        xyz, scores=scores, voxel_size=size, shape=context.shape, feature=classes.get(class_id, "")
    )


def _describe(classes: dict[int, str]) -> str:
    return ", ".join(f"{k}: '{v}'" for k, v in sorted(classes.items())) or "none"


def _write_ndjson(path: Path, picks: Picks, overwrite: bool) -> None:
    matrices = None if picks.orientations is None else rotation_matrices(picks.orientations)
    lines = []
    for i, location in enumerate(picks.xyz):
        point: dict[str, Any] = {
            "type": "point" if matrices is None else "orientedPoint",
            "location": dict(zip("xyz", map(float, location), strict=True)),
        }
        if matrices is not None:
            point["xyz_rotation_matrix"] = matrices[i].tolist()
        lines.append(json.dumps(point) + "\n")
    write_text_atomic(path, "".join(lines), overwrite=overwrite)


def _read_ndjson(path: Path, context: _ReadContext) -> Picks:
    points = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                points.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError) as error:
                raise BadInputError(
                    f"{path}: line {number} is not JSON ({first_line(error)})"
                ) from error
    xyz = np.array([[p["location"][a] for a in "xyz"] for p in points], dtype=np.float64).reshape(
        -1, 3
    )
    oriented = bool(points) and all("xyz_rotation_matrix" in p for p in points)
    matrices = [p["xyz_rotation_matrix"] for p in points] if oriented else None
    return Picks.from_xyz(
        xyz, orientations=None if matrices is None else euler_angles(np.array(matrices))
    )
