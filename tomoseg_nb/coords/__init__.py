"""Particle coordinates: one picks table type, read and written in the formats users' next tools read.

Frames
------
``Picks.coordinates`` are voxel indices of the source tomogram (``(z, y, x)``) or micrograph
(``(y, x)``): the centre of voxel ``i`` is at ``i``, the first voxel is 0. Each format stores them
in its own frame, converted exactly on writing and back on reading:

========================  =========================================================================
format                    what the file holds
========================  =========================================================================
``relion5`` (.star)       ``rlnCenteredCoordinateX/Y/ZAngst``: Angstrom from the tomogram centre.
                          RELION 5 puts the centre at ``size / 2`` voxels (``Tomogram::centre =
                          (w0/2, h0/2, d0/2)``, a float division; ``ParticleSet`` converts with
                          ``pixel = angst / pixel_size + centre``), so
                          ``angst = (index - size / 2) * voxel_size``. This is the same physical
                          point whatever the binning of the tomogram, provided the binned size is
                          the unbinned size divided by the binning. Needs ``shape`` and
                          ``voxel_size``.
``relion4`` (.star)       ``rlnCoordinateX/Y/Z``: voxels of the tomogram, 0-based (RELION 4.1).
                          RELION 4 expects unbinned tilt-series pixels: use
                          ``picks.rescaled(binning)`` first for picks made on a binned tomogram.
``copick`` (.json)        ``points[].location``: Angstrom from the first voxel centre
                          (``index * voxel_spacing``), plus ``transformation_`` (4 x 4).
``eman2`` (*_info.json)   ``boxes_3d: [[x, y, z, "tomoseg", score, class_id], ...]``: voxels; when
                          the info file has ``apix_unbin`` (EMAN2's tomogram pipeline), unbinned
                          pixels from the tomogram centre,
                          ``(index - size / 2) * voxel_size / apix_unbin``, as
                          ``e2spt_extractfromseg`` writes them.
``imod`` (.txt)           ``x y z`` per line, numbered from 1 like 3dmod shows them (turn into a
                          model with ``point2model``; with ``one_based=False``, ``point2model
                          -zero``).
``csv`` (.csv)            header ``x,y,z[,score]`` or ``x,y[,score]``, 0-based voxels.
``cryoet-ndjson``         CryoET Data Portal point annotations, one JSON object per line:
(.ndjson)                 ``{"type": "point", "location": {"x", "y", "z"}}`` in 0-based voxels;
                          ``"orientedPoint"`` with ``xyz_rotation_matrix`` when oriented.
``box`` (.box)            EMAN / RELION 2D boxes ``x y w h``: the lower corner, whole pixels.
``star2d`` (.star)        RELION micrograph coordinates ``rlnCoordinateX/Y`` in pixels, 0-based.
========================  =========================================================================

The MRC origin (``Picks.origin``, the header origin of the source) never enters these files: voxel
indices are in the file's own frame, RELION 5 and EMAN2 are relative to the tomogram centre, and
copick and the Data Portal are in the volume's own frame (first voxel at 0) - which is what each
tool expects. ``Picks.angstrom_xyz(include_origin=True)`` gives the header frame ChimeraX uses
when it displays the map with its origin.

Orientations are RELION ZYZ Euler angles (rot, tilt, psi) in degrees. copick and the Data Portal
store a rotation matrix; it is RELION's Euler matrix, the same convention copick uses when it
converts RELION particles (``Rotation.from_euler("ZYZ", angles, degrees=True).inv()``).
"""

from .formats import FORMATS, picks_format, read_picks, write_picks
from .picks import Picks, euler_angles, rotation_matrices

__all__ = [
    "FORMATS",
    "Picks",
    "euler_angles",
    "picks_format",
    "read_picks",
    "rotation_matrices",
    "write_picks",
]
