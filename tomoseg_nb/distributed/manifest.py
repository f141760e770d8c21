"""The manifest of a distributed segmentation: which units of a tomogram are done, and with what.

One JSON file per tomogram next to its outputs (``DIR/<tomogram>.segment.json``), written atomically by
the client only. It records the signature of the run (tomogram and model files with their sizes and
modification times, output type, slab layout) and, per finished unit, its timing and where it ran. A
re-run with the same signature skips the recorded units; any change to the signature means the
partial outputs belong to another computation and the tomogram starts over.

Format (``format_version`` 1)::

    {"format": "tomoseg_nb.segment-manifest", "format_version": 1,
     "signature": {...}, "outputs": {"membrane": "TS_01__membrane.mrc", ...},
     "total_units": 8, "complete": false,
     "units": {"z0000-0016:membrane+ribosome": {"seconds": 1.9, "host": "node7", "pid": 4242,
                                                 "finished": "2026-01-01T12:00:00+00:00"}, ...}}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import write_json_atomic
from ..errors import BadInputError

MANIFEST_FORMAT = "tomoseg_nb.segment-manifest"
MANIFEST_VERSION = 1


def manifest_path(out_dir: str | os.PathLike, tomogram_name: str) -> Path:
    """``DIR/<tomogram>.segment.json``."""
    return Path(out_dir) / f"{tomogram_name}.segment.json"


def as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), so signatures compare equal."""
    return json.loads(json.dumps(value))


@dataclass
class Manifest:
    """Progress of one tomogram's segmentation; see the module docstring for the file format."""

    path: Path
    signature: dict
    outputs: dict[str, str]
    total_units: int
    units: dict[str, dict] = field(default_factory=dict)
    complete: bool = False

    @classmethod
    def load(cls, path: str | os.PathLike) -> Manifest | None:
        """Read a manifest; None when there is none."""
        path = Path(path)
        if not path.exists():
            return None
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("format") != MANIFEST_FORMAT:
                raise ValueError("not a tomoseg_nb segmentation manifest")
            if document.get("format_version", 0) > MANIFEST_VERSION:
                raise ValueError(
                    f"written by a newer tomoseg_nb (format {document['format_version']})"
                )
            return cls(
                path=path,
                signature=document["signature"],
                outputs=dict(document["outputs"]),
                total_units=int(document["total_units"]),
                units=dict(document["units"]),
                complete=bool(document["complete"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
            raise BadInputError(
                f"{path}: unreadable segmentation manifest ({error}); delete it to start this "
                "tomogram over"
            ) from error

    def save(self) -> None:
        """Replace the file atomically: a crash leaves the previous or the new record, never half."""
        write_json_atomic(
            self.path,
            {
                "format": MANIFEST_FORMAT,
                "format_version": MANIFEST_VERSION,
                "signature": self.signature,
                "outputs": self.outputs,
                "total_units": self.total_units,
                "complete": self.complete,
                "units": self.units,
            },
        )
