"""Volume I/O: round trips keep the frame, big MRCs open lazily, bad inputs fail clearly, writes are atomic."""

import os
import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from tomoseg_nb import volume as volume_module
from tomoseg_nb.errors import BadInputError, MissingInputError, OutputExistsError, TomosegError
from tomoseg_nb.volume import SlabWriter, Volume, create_volume, open_volume, write_volume

VOXEL_SIZE = 13.7
ORIGIN = (120.0, -45.5, 3.25)


@pytest.fixture(scope="session")
def tomogram():
    return np.random.default_rng(0).normal(size=(6, 20, 30)).astype(np.float32)


def everything_in(folder: Path) -> list[str]:
    """All names in ``folder``, hidden temporaries included."""
    return sorted(p.name for p in folder.iterdir())


def resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("suffix", [".mrc", ".tif", ".zarr"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int16])
def test_round_trip_keeps_data_voxel_size_and_origin(tmp_path, tomogram, suffix, dtype):
    data = (tomogram * 20).astype(dtype)
    path = write_volume(tmp_path / f"t{suffix}", data, voxel_size=VOXEL_SIZE, origin=ORIGIN)
    with open_volume(path) as volume:
        assert volume.shape == data.shape and volume.ndim == 3
        np.testing.assert_array_equal(volume.read(), data.astype(np.float32))
        assert volume.voxel_size == pytest.approx(VOXEL_SIZE, rel=1e-6)
        assert volume.origin == pytest.approx(ORIGIN, rel=1e-6)
        assert volume.name == "t" and volume.path == path
    assert everything_in(tmp_path) == [f"t{suffix}"]


@pytest.mark.parametrize("suffix", [".mrc", ".tif", ".zarr"])
def test_2d_round_trip(tmp_path, tomogram, suffix):
    image = tomogram[0]
    path = write_volume(tmp_path / f"m{suffix}", image, voxel_size=1.06)
    with open_volume(path, ndim=2) as volume:
        assert volume.ndim == 2
        np.testing.assert_array_equal(volume.read(), image)
        assert volume.voxel_size == pytest.approx(1.06, rel=1e-6)


def test_slices_and_slabs_are_float32_copies(tmp_path, tomogram):
    path = write_volume(tmp_path / "t.mrc", tomogram.astype(np.float16), voxel_size=VOXEL_SIZE)
    with open_volume(path) as volume:
        assert volume.slice(2).dtype == np.float32 and volume.slice(2).shape == (20, 30)
        np.testing.assert_array_equal(
            volume.slab(4, 99), tomogram.astype(np.float16)[4:].astype(np.float32)
        )
        with pytest.raises(IndexError):
            volume.slice(6)


def test_one_frame_stack_opens_as_a_micrograph(tmp_path, tomogram):
    path = write_volume(tmp_path / "m.mrc", tomogram[:1])
    with open_volume(path, ndim=2) as volume:
        assert volume.shape == (20, 30)


def test_voxel_size_override(tmp_path, tomogram):
    path = write_volume(tmp_path / "t.mrc", tomogram, voxel_size=VOXEL_SIZE)
    with open_volume(path, voxel_size=4.2) as volume:
        assert volume.voxel_size == 4.2
    with pytest.raises(BadInputError, match="positive"):
        open_volume(path, voxel_size=0)


def test_uncompressed_tiff_and_ome_zarr_are_not_read_whole(tmp_path, tomogram):
    tif = write_volume(tmp_path / "t.tif", tomogram, voxel_size=VOXEL_SIZE)
    with open_volume(tif) as volume:
        assert isinstance(volume.data, np.memmap)
    zarr = write_volume(tmp_path / "t.zarr", tomogram, voxel_size=VOXEL_SIZE)
    with open_volume(zarr) as volume:
        assert not isinstance(volume.data, np.ndarray)  # a zarr array, read chunk by chunk


def test_tiff_is_a_z_stack_for_imagej(tmp_path, tomogram):
    import tifffile

    path = write_volume(tmp_path / "t.tif", tomogram, voxel_size=VOXEL_SIZE)
    with tifffile.TiffFile(path) as tif:
        assert tif.imagej_metadata["slices"] == 6 and "channels" not in tif.imagej_metadata
        assert tif.series[0].axes == "ZYX"


# ------------------------------------------------------------------------------------- lazy


def test_large_mrc_opens_lazily(tmp_path):
    """A 2 GiB (512 x 1024 x 1024 float32) sparse MRC: memory-mapped, only sampled slices read."""
    path = tmp_path / "big.mrc"
    # The header is set before the first close: re-opening with "r+", header_only=True makes
    # mrcfile 1.5.4 append 8 bytes of uninitialised memory (sometimes NaN) as the first voxels.
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((1, 1, 1), np.float32))
        header = mrc.header
        header.nx, header.ny, header.nz = 1024, 1024, 512
        header.mx, header.my, header.mz = 1024, 1024, 512
        header.cella = (10240.0, 10240.0, 5120.0)
    n_bytes = 512 * 1024 * 1024 * 4
    os.truncate(path, 1024 + n_bytes)
    before = resident_bytes()
    with open_volume(path) as volume:
        assert isinstance(volume.data, np.memmap)
        assert volume.shape == (512, 1024, 1024) and volume.voxel_size == 10.0
        slab = volume.slab(200, 202)
        assert slab.shape == (2, 1024, 1024) and not slab.any()
        grown = resident_bytes() - before
    # opening samples 3 slices and the slab is 2 more (4 MiB each); the file is 2 GiB
    assert grown < 96 * 1024**2, f"resident memory grew by {grown / 1024**2:.0f} MiB"


# ------------------------------------------------------------------------------- bad inputs


def raises_one_error_naming(path, error_type, call, match=None):
    """``call`` raises one TomosegError, one line naming ``path``, and warns about nothing."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(error_type, match=match) as error:
            call()
    assert isinstance(error.value, TomosegError)
    assert str(path) in str(error.value)
    assert "\n" not in str(error.value)
    assert not caught, [str(w.message) for w in caught]


def test_missing_file(tmp_path):
    path = tmp_path / "absent.mrc"
    raises_one_error_naming(path, MissingInputError, lambda: open_volume(path))


def test_truncated_mrc(tmp_path, tomogram):
    path = write_volume(tmp_path / "t.mrc", tomogram)
    os.truncate(path, path.stat().st_size // 2)
    raises_one_error_naming(path, BadInputError, lambda: open_volume(path), "MRC")


def test_mrc_header_with_a_negative_size(tmp_path, tomogram):
    # Found by the fuzzer: nx = -2**31 made numpy's memmap raise OverflowError.
    path = write_volume(tmp_path / "t.mrc", tomogram)
    header = bytearray(path.read_bytes())
    header[0:4] = (-(2**31)).to_bytes(4, "little", signed=True)
    path.write_bytes(bytes(header))
    raises_one_error_naming(path, BadInputError, lambda: open_volume(path), "impossible sizes")


def test_non_mrc_file_with_mrc_suffix(tmp_path):
    path = tmp_path / "notes.mrc"
    path.write_text("these are my notes, not a tomogram\n" * 100)
    raises_one_error_naming(path, BadInputError, lambda: open_volume(path), "not a readable MRC")


def test_2d_file_where_a_volume_is_needed(tmp_path, tomogram):
    path = write_volume(tmp_path / "image.mrc", tomogram[0])
    raises_one_error_naming(path, BadInputError, lambda: open_volume(path), "3D tomogram is needed")
    path3 = write_volume(tmp_path / "stack.tif", tomogram)
    raises_one_error_naming(path3, BadInputError, lambda: open_volume(path3, ndim=2), "2D")


@pytest.mark.filterwarnings("ignore:Data array contains:RuntimeWarning")  # mrcfile, writing
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # header stats
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_a_sampled_slice_fails_at_opening(tmp_path, tomogram, bad):
    data = tomogram.copy()
    data[0, 3, 4] = bad
    path = write_volume(tmp_path / "t.mrc", data)
    raises_one_error_naming(path, BadInputError, lambda: open_volume(path), "NaN/Inf")


@pytest.mark.filterwarnings("ignore:Data array contains:RuntimeWarning")  # mrcfile, writing
def test_nan_elsewhere_fails_when_read(tmp_path, tomogram):
    data = tomogram.copy()
    data[1, 3, 4] = np.nan  # opening samples slices 0, 3 and 5
    path = write_volume(tmp_path / "t.mrc", data)
    with open_volume(path) as volume:
        volume.slab(2, 6)
        raises_one_error_naming(path, BadInputError, lambda: volume.slab(0, 3), "slices 0-2")


def test_unknown_suffix(tmp_path):
    path = tmp_path / "tomogram.xyz"
    path.write_bytes(b"\0" * 100)
    raises_one_error_naming(path, BadInputError, lambda: open_volume(path), "unknown volume format")


def test_corrupt_tiff_and_zarr(tmp_path):
    tif = tmp_path / "t.tif"
    tif.write_bytes(b"II*\0garbage")
    raises_one_error_naming(tif, BadInputError, lambda: open_volume(tif), "TIFF")
    store = tmp_path / "t.zarr"
    store.mkdir()
    raises_one_error_naming(store, BadInputError, lambda: open_volume(store), "OME-Zarr")


@pytest.mark.parametrize(
    ("key", "value"), [("scale", "abc"), ("translation", 7), ("unit", ["angstrom"])]
)
def test_zarr_with_malformed_frame_metadata_is_one_clear_error(tmp_path, tomogram, key, value):
    import zarr

    store = write_volume(tmp_path / "t.zarr", tomogram, voxel_size=VOXEL_SIZE)
    group = zarr.open_group(str(store), mode="r+")
    multiscales = group.attrs["multiscales"]
    if key == "unit":
        multiscales[0]["axes"][-1]["unit"] = value
    else:
        for transform in multiscales[0]["datasets"][0]["coordinateTransformations"]:
            if key in transform:
                transform[key] = value
    group.attrs["multiscales"] = multiscales
    if key == "unit":  # an unknown unit reads as Angstrom, as an absent one does
        with open_volume(store) as volume:
            assert volume.voxel_size == pytest.approx(VOXEL_SIZE)
    else:
        raises_one_error_naming(store, BadInputError, lambda: open_volume(store), "OME-Zarr")


# --------------------------------------------------------------------------- atomic writes


def test_refuses_to_overwrite_without_overwrite(tmp_path, tomogram):
    path = write_volume(tmp_path / "t.mrc", tomogram, voxel_size=1.0)
    with pytest.raises(OutputExistsError, match=r"t\.mrc.*overwrite=True"):
        write_volume(path, tomogram * 0, voxel_size=2.0)
    with open_volume(path) as volume:
        np.testing.assert_array_equal(volume.read(), tomogram)
    write_volume(path, tomogram * 0, voxel_size=2.0, overwrite=True)
    with open_volume(path) as volume:
        assert volume.voxel_size == 2.0 and not volume.read().any()
    assert everything_in(tmp_path) == ["t.mrc"]


def test_cannot_write_unknown_suffix(tmp_path, tomogram):
    with pytest.raises(BadInputError, match=r"t\.png"):
        write_volume(tmp_path / "t.png", tomogram)
    assert everything_in(tmp_path) == []


def _fail_part_way(target: Path, *args, **kwargs):
    """Stand-in writer that leaves a partial output behind, then fails."""
    target = Path(target)
    if target.suffix == ".zarr" or ".zarr." in target.name:
        (target / "0").mkdir(parents=True)
        (target / "0" / "0.0.0").write_bytes(b"partial")
    else:
        target.write_bytes(b"partial")
    raise RuntimeError("disk full")


@pytest.mark.parametrize("suffix", [".mrc", ".tif", ".zarr"])
def test_failure_mid_write_leaves_nothing(tmp_path, tomogram, monkeypatch, suffix):
    import tifffile

    def failing_frame(mrc, *args):
        mrc.flush()  # the data block is on disk already
        raise RuntimeError("disk full")

    monkeypatch.setattr(volume_module, "_set_frame", failing_frame)
    monkeypatch.setattr(tifffile, "imwrite", _fail_part_way)
    monkeypatch.setattr(volume_module, "write_ome_zarr", _fail_part_way)
    with pytest.raises(RuntimeError, match="disk full"):
        write_volume(tmp_path / f"t{suffix}", tomogram)
    assert everything_in(tmp_path) == []


def test_failed_replace_keeps_the_old_file_and_no_temporary(tmp_path, tomogram, monkeypatch):
    path = write_volume(tmp_path / "t.mrc", tomogram)

    def refuse(*args):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError):
        write_volume(path, tomogram * 0, overwrite=True)
    monkeypatch.undo()
    assert everything_in(tmp_path) == ["t.mrc"]
    with open_volume(path) as volume:
        np.testing.assert_array_equal(volume.read(), tomogram)


def test_read_only_folder_leaves_nothing(read_only_folder, tomogram):
    with pytest.raises(PermissionError):
        write_volume(read_only_folder / "t.mrc", tomogram)
    assert everything_in(read_only_folder) == ["keep.txt"]


# -------------------------------------------------------------------------- create_volume


def test_create_volume_appears_only_on_success(tmp_path):
    path = tmp_path / "out.mrc"
    with create_volume(path, (4, 8, 9), np.float16, voxel_size=VOXEL_SIZE, origin=ORIGIN) as out:
        assert isinstance(out, SlabWriter) and out.shape == (4, 8, 9)
        out[:] = 0.5
        assert not path.exists()
    with open_volume(path) as volume:
        assert volume.data.dtype == np.float16 and (volume.read() == 0.5).all()
        assert volume.voxel_size == pytest.approx(VOXEL_SIZE) and volume.origin == pytest.approx(
            ORIGIN
        )
    assert everything_in(tmp_path) == ["out.mrc"]


def test_create_volume_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "out.mrc"
    with pytest.raises(RuntimeError, match="cancelled"):
        with create_volume(path, (4, 8, 9)) as out:
            out[:2] = 1.0
            raise RuntimeError("cancelled")
    assert everything_in(tmp_path) == []
    with pytest.raises(BadInputError, match="dtype"):
        with create_volume(path, (4, 8, 9), np.complex64):
            pass
    with pytest.raises(BadInputError, match="MRC"):
        with create_volume(tmp_path / "out.tif", (4, 8, 9)):
            pass
    assert everything_in(tmp_path) == []


def test_create_volume_refuses_to_overwrite(tmp_path, tomogram):
    path = write_volume(tmp_path / "out.mrc", tomogram)
    with pytest.raises(OutputExistsError):
        with create_volume(path, (4, 8, 9)):
            pass
    with open_volume(path) as volume:
        np.testing.assert_array_equal(volume.read(), tomogram)
    with create_volume(path, (2, 3, 4), overwrite=True) as out:
        out[:] = 7
    with open_volume(path) as volume:
        assert volume.shape == (2, 3, 4)


def test_volume_wraps_arrays_in_memory(tomogram):
    volume = Volume(tomogram, voxel_size=5.0)
    assert volume.name == "volume" and volume.shape == tomogram.shape
    np.testing.assert_array_equal(volume.slab(1, 3), tomogram[1:3])
    with pytest.raises(BadInputError, match="2D"):
        Volume(tomogram[0]).slice(0)


def test_slabs_are_read_by_position_in_either_byte_order(tmp_path):
    import mrcfile

    data = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    path = tmp_path / "big_endian.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(data.astype(">f4"))
    with open_volume(path) as volume:
        np.testing.assert_array_equal(volume.slab(1, 4), data[1:4])
        np.testing.assert_array_equal(volume.slab(3, 99), data[3:])


def test_slab_writer_takes_contiguous_slice_ranges_only(tmp_path):
    with create_volume(tmp_path / "out.mrc", (4, 3, 2), np.float32) as out:
        out[1] = 1.0
        out[2:4] = np.full((2, 3, 2), 2.0)
        with pytest.raises(IndexError, match="contiguous"):
            out[::2] = 0.0
        with pytest.raises(IndexError, match="contiguous"):
            out[7] = 0.0
    with open_volume(tmp_path / "out.mrc") as volume:
        np.testing.assert_array_equal(volume.read()[:, 0, 0], [0.0, 1.0, 2.0, 2.0])
