"""Scene-scale prediction: seamless blending, bounded memory, both input forms, clear errors."""

from __future__ import annotations

import shutil
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas
import numpy as np
import pytest
import rasterio
import shapely
import torch
import torch.nn.functional as F
from rasterio.crs import CRS
from rasterio.transform import Affine

from agbm.cli import main
from agbm.data import CHANNELS, MONTHS, S1_NODATA, S2_NODATA_CLOUD, normalise
from agbm.data.scene import Scene, open_scene
from agbm.data.synth import NoiseBank, clean_s2, clean_vh_vv, forest_scene
from agbm.errors import DataError
from agbm.inference import predict_scene
from agbm.inference.layers import SPREAD_BAND, MapLayers
from agbm.inference.scene import Predictor, model_predictor, predict_sums
from agbm.inference.tiling import BLOCK, Block, Tiling, plan_tiling, taper
from agbm.io import file_sha256
from agbm.models import TemporalUNet, save_model
from tests.helpers import write_calibration

#: Taller and wider than 1024, and multiples neither of 32 nor of the default stride (192).
HEIGHT, WIDTH = 1030, 1100
CRS_ = CRS.from_epsg(3067)
TRANSFORM = Affine(10.0, 0.0, 380_000.0, 0.0, -10.0, 6_900_000.0)
#: Months without any data, without S2 and without S1: missing files or empty stack months.
ABSENT, S1_ONLY, S2_ONLY = 7, 3, 5
SCALE = 100.0


# --- a synthetic scene, written both as band stacks and as per-month files ----------------------


@dataclass(frozen=True)
class SceneFiles:
    stacks: tuple[str, str]
    months: tuple[str, str]  # {MM} patterns
    pixel: np.ndarray  # `pixel_model` applied to the whole scene at once


def month_image(s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """One month's normalised `[15, H, W]` image (both satellites present)."""
    acquired = torch.ones(2, 1, dtype=torch.bool)
    image = normalise(torch.from_numpy(s1[None]), torch.from_numpy(s2[None]), acquired)
    return image[0].numpy()


def _create(path: Path, bands: int, dtype: str, shape: tuple[int, int], **profile):
    """A GeoTIFF open for writing, on the scene's grid unless `profile` says otherwise; band-
    interleaved, as stacks are written month by month."""
    grid = {"crs": CRS_, "transform": TRANSFORM, "interleave": "band"}
    return rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=shape[0],
        width=shape[1],
        count=bands,
        dtype=dtype,
        **{**grid, **profile},
    )


def write_tif(path: Path, array: np.ndarray, **profile) -> None:
    with _create(path, array.shape[0], array.dtype.name, array.shape[1:], **profile) as dst:
        dst.write(array)


def month_images(
    cover: np.ndarray, stand: np.ndarray, month: int, noise: NoiseBank
) -> tuple[np.ndarray, np.ndarray]:
    """Raw S1 (float32 dB) and S2 (uint16) of one month, with no-data patches and empty months
    encoded as a stack encodes them (S1 -9999; S2 all 0 or CLP 255)."""
    h, w = cover.shape
    vh, vv = clean_vh_vv(cover, stand, month)
    s1 = np.stack([vv, vh, vv + 0.5, vh + 0.4]) + 0.5 * noise.draw(4)[:, :h, :w]
    s2 = np.empty((11, h, w), dtype=np.uint16)
    s2[:10] = np.clip(
        np.rint(clean_s2(cover, month) * (1 + 0.03 * noise.draw(10)[:, :h, :w])), 0, 1e4
    )
    s2[10] = np.clip(np.rint(20 + 10 * noise.draw(1)[0, :h, :w]), 0, 100)
    if month == 1:  # a gap in S1 and, in month 2, a no-data patch in S2: smaller than a window
        s1[:, h // 10 : h // 4, w * 6 // 10 : w * 8 // 10] = S1_NODATA
    if month == 2:
        patch = (slice(h // 2, h * 7 // 10), slice(w // 20, w // 4))
        s2[(slice(0, 10), *patch)], s2[(10, *patch)] = 0, S2_NODATA_CLOUD
    if month == 4:
        s1[2:] = S1_NODATA  # the descending orbit is missing
    if month in (ABSENT, S2_ONLY):
        s1[:] = S1_NODATA
    if month == ABSENT:
        s2[:] = 0  # a zero-filled month
    if month == S1_ONLY:
        s2[:10], s2[10] = 0, S2_NODATA_CLOUD
    return s1.astype(np.float32), s2


def write_scene(root: Path, shape: tuple[int, int], seed: int, **layout) -> SceneFiles:
    """A forest scene written as 48/132-band stacks and as per-month files (a month's file is
    missing where it has no data), never holding more than one month in memory."""
    rng = np.random.default_rng(seed)
    side = max(shape)
    cover, stand = (a[: shape[0], : shape[1]] for a in forest_scene(rng, side))
    noise = NoiseBank(rng, side)
    total = np.zeros(shape, dtype=np.float32)
    root.mkdir(parents=True, exist_ok=True)
    with (
        _create(root / "S1.tif", 4 * MONTHS, "float32", shape, **layout) as s1_stack,
        _create(root / "S2.tif", 11 * MONTHS, "uint16", shape, **layout) as s2_stack,
    ):
        for month in range(MONTHS):
            s1, s2 = month_images(cover, stand, month, noise)
            s1_stack.write(s1, indexes=list(range(4 * month + 1, 4 * month + 5)))
            s2_stack.write(s2, indexes=list(range(11 * month + 1, 11 * month + 12)))
            if month not in (ABSENT, S2_ONLY):
                write_tif(root / f"S1_{month:02d}.tif", s1)
            if month not in (ABSENT, S1_ONLY):
                write_tif(root / f"S2_{month:02d}.tif", s2)
            if month != ABSENT:
                total += month_image(s1, s2).sum(0) / CHANNELS
    return SceneFiles(
        (str(root / "S1.tif"), str(root / "S2.tif")),
        (str(root / "S1_{MM}.tif"), str(root / "S2_{MM}.tif")),
        total / (MONTHS - 1) * SCALE,
    )


# --- stand-in models: local receptive fields, so a whole-scene pass is the ground truth ---------


def pixel_model(image: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Per pixel, the mean band value over the present months (x 100): no spatial context."""
    weights = present.to(image.dtype)[:, :, None, None]
    count = present.sum(dim=1).to(image.dtype)[:, None, None, None]
    return (image.mean(dim=2) * weights).sum(dim=1, keepdim=True) / count * SCALE


def box_model(image: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """`pixel_model` under a zero-padded 3x3 box filter: a one-pixel receptive field that, like
    any CNN, is wrong at a window's edges."""
    return F.avg_pool2d(pixel_model(image, present), 3, stride=1, padding=1)


def box_filter(a: np.ndarray) -> np.ndarray:
    padded = np.pad(a, 1)
    return (
        sum(padded[i : i + a.shape[0], j : j + a.shape[1]] for i in range(3) for j in range(3)) / 9
    )


def run(s1: str, s2: str, model, out: Path, window: int = 256, overlap: int = 64, batch=2):
    with open_scene(s1, s2) as scene:
        tiling = plan_tiling(scene.height, scene.width, window=window, overlap=overlap)
        predict_scene(scene, model, out, tiling, batch_size=batch)
    with rasterio.open(out) as src:
        return src.read(1)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> SceneFiles:
    """The 1030 x 1100 scene; its stacks tiled as large scenes usually are."""
    root = tmp_path_factory.mktemp("big")
    return write_scene(root, (HEIGHT, WIDTH), seed=5, tiled=True, blockxsize=256, blockysize=256)


@pytest.fixture(scope="module")
def box_from_stacks(big: SceneFiles, tmp_path_factory) -> tuple[Path, np.ndarray, int]:
    """The box model over the big scene's stacks: output path, map and traced memory peak."""
    out = tmp_path_factory.mktemp("box") / "agbm.tif"
    tracemalloc.start()
    try:
        agbm = run(*big.stacks, box_model, out, batch=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return out, agbm, peak


@pytest.fixture(scope="module")
def pixel_maps(big: SceneFiles, tmp_path_factory) -> tuple[np.ndarray, np.ndarray]:
    """The pixel model's maps from the stacks and from the per-month files."""
    out = tmp_path_factory.mktemp("pixel")
    return (
        run(*big.stacks, pixel_model, out / "stacks.tif"),
        run(*big.months, pixel_model, out / "months.tif"),
    )


# --- the big scene ------------------------------------------------------------------------------


def test_output_is_a_cloud_optimised_float32_geotiff_on_the_input_grid(box_from_stacks) -> None:
    out, _, _ = box_from_stacks
    with rasterio.open(out) as src:
        assert (src.count, src.height, src.width) == (1, HEIGHT, WIDTH)
        assert src.dtypes == ("float32",)
        assert src.crs == CRS_ and src.transform == TRANSFORM
        assert src.profile["tiled"] and src.block_shapes == [(BLOCK, BLOCK)]
        assert src.compression.name == "deflate"
        assert np.isnan(src.nodata)
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and src.overviews(1)
        assert src.descriptions == ("AGBM (t/ha)",) and "AGBM_UNITS" in src.tags()
    assert [p.name for p in out.parent.iterdir()] == ["agbm.tif"]  # no temporary file left


def test_windows_of_a_per_pixel_model_blend_to_one_whole_scene_pass(pixel_maps, big) -> None:
    for agbm in pixel_maps:
        np.testing.assert_allclose(agbm, big.pixel, rtol=1e-5, atol=1e-4)


def test_stack_and_per_month_inputs_give_the_same_map(pixel_maps) -> None:
    np.testing.assert_array_equal(*pixel_maps)


def test_seams_of_a_conv_model_are_invisible(box_from_stacks, big) -> None:
    """Away from window edges the blend is the whole-scene pass. On a window's outermost pixels
    the box filter misses neighbours (an error of up to 5/9 of the value), but there the taper
    weighs the window by ~1.5e-4 against ~1 for an overlapping one, and at most two windows
    have an edge at a pixel: the seams stay some 1e-4 of the value, where a plain mean of the
    windows would be off by a quarter of it."""
    _, agbm, _ = box_from_stacks
    whole = box_filter(big.pixel)
    tiling = plan_tiling(HEIGHT, WIDTH)
    edge_rows = [r + d for r in tiling.rows for d in (0, 255) if 0 < r + d < HEIGHT - 1]
    edge_cols = [c + d for c in tiling.cols for d in (0, 255) if 0 < c + d < WIDTH - 1]
    inside = np.ones((HEIGHT, WIDTH), dtype=bool)
    inside[edge_rows], inside[:, edge_cols] = False, False
    np.testing.assert_allclose(agbm[inside], whole[inside], rtol=1e-5, atol=1e-4)
    assert np.abs(agbm - whole).max() < 2 * taper(256, 64)[0] * whole.max()


def test_memory_is_bounded_by_the_window_not_the_scene(box_from_stacks) -> None:
    _, _, peak = box_from_stacks
    scene_bytes = HEIGHT * WIDTH * MONTHS * CHANNELS * 4  # the float32 input of a whole-scene pass
    window_bytes = 256 * 256 * MONTHS * CHANNELS * 4
    assert peak < scene_bytes / 4
    assert peak < 5 * window_bytes  # batch of one, one more read ahead, raw reads, the strip


# --- windows and blending ------------------------------------------------------------------------


# --- small scenes: padding, no-data windows, the real model through the CLI, errors -------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SceneFiles:
    return write_scene(tmp_path_factory.mktemp("small"), (80, 72), seed=9)


def test_a_scene_smaller_than_a_window_is_mirrored_into_it(small: SceneFiles, tmp_path) -> None:
    agbm = run(small.months[0], small.stacks[1], pixel_model, tmp_path / "agbm.tif")
    np.testing.assert_allclose(agbm, small.pixel, rtol=1e-5, atol=1e-4)


def test_pixels_only_empty_windows_cover_are_nan(tmp_path: Path) -> None:
    s1 = np.full((4 * MONTHS, 64, 192), -12.0, dtype=np.float32)  # windows at columns 0, 32, ...
    s2 = np.full((11 * MONTHS, 64, 192), 1000, dtype=np.uint16)
    s1[..., :100], s2[..., :100] = S1_NODATA, 0
    write_tif(tmp_path / "S1.tif", s1)
    write_tif(tmp_path / "S2.tif", s2)
    agbm = run(
        str(tmp_path / "S1.tif"), str(tmp_path / "S2.tif"), pixel_model, tmp_path / "o.tif", 32, 0
    )
    assert np.isnan(agbm[:, :100]).all()  # no observation there, in a window with data or not
    assert np.isfinite(agbm[:, 100:]).all()


def test_cli_predicts_a_scene_with_a_real_checkpoint(small: SceneFiles, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TemporalUNet("resnet18", decoder_channels=(16, 16, 16, 16, 16))
    save_model(tmp_path / "model.pt", model)
    out = tmp_path / "maps" / "agbm.tif"
    inputs = f"--s1 {small.stacks[0]} --s2 {small.months[1]} --checkpoint {tmp_path / 'model.pt'}"
    options = f"--out {out} --window 64 --overlap 16 --tta none --batch-size 4"
    out.parent.mkdir(parents=True)
    stale = out.parent / f".agbm.tif.tmp{2**22 + 12345}"  # a killed run's partial map
    stale.write_bytes(b"half a map")
    assert main(["predict-scene", *inputs.split(), *options.split()]) == 0
    assert not stale.exists()
    with rasterio.open(out) as src:
        assert (src.height, src.width, src.crs, src.transform) == (80, 72, CRS_, TRANSFORM)
        agbm = src.read(1)
    assert np.isfinite(agbm).all() and (agbm >= 0).all() and agbm.std() > 0


def test_cli_help_documents_the_input_format(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["predict-scene", "--help"])
    text = capsys.readouterr().out
    assert "48-band stack" in text and "132-band stack" in text and "{MM}" in text


EMPTY_S2 = np.zeros((11, 80, 72), dtype=np.uint16)


@pytest.mark.parametrize(
    ("s1", "s2", "bad_file", "message"),
    [
        (
            "S1.tif",
            "S2.tif",
            ("S1.tif", np.zeros((47, 80, 72), np.float32), {}),
            r"S1.tif: has 47 band\(s\), expected 48 \(S1 stack",
        ),
        (
            "S1.tif",
            "S2_{MM}.tif",
            ("S2_04.tif", EMPTY_S2[:10], {}),
            r"S2_04.tif: has 10 band\(s\), expected 11",
        ),
        (
            "S1.tif",
            "S2_{MM}.tif",
            ("S2_04.tif", EMPTY_S2[..., :64], {}),
            r"S2_04.tif: size \(80, 64\) differs",
        ),
        (
            "S1_{MM}.tif",
            "S2_{MM}.tif",
            ("S2_04.tif", EMPTY_S2, {"crs": CRS.from_epsg(32635)}),
            r"S2_04.tif: CRS EPSG:32635 differs",
        ),
        (
            "S1.tif",
            "S2_{MM}.tif",
            (
                "S2_04.tif",
                EMPTY_S2,
                {"transform": Affine(10.0, 0.0, 380_010.0, 0.0, -10.0, 6_900_000.0)},
            ),
            r"S2_04.tif: transform .* differs",
        ),
        ("nothing_{MM}.tif", "S2.tif", None, "no S1 file for any month"),
        ("S1.tif", "missing.tif", None, "missing.tif: no such file"),
    ],
    ids=["stack bands", "month bands", "size", "CRS", "transform", "no file", "no such file"],
)
def test_bad_inputs_raise_data_error(small, tmp_path, s1, s2, bad_file, message) -> None:
    root = Path(shutil.copytree(Path(small.stacks[0]).parent, tmp_path / "data"))
    if bad_file:
        name, array, profile = bad_file
        write_tif(root / name, array, **profile)
    with pytest.raises(DataError, match=message), open_scene(str(root / s1), str(root / s2)):
        pass


def test_non_finite_values_fail_without_leaving_an_output(small, tmp_path: Path) -> None:
    s1 = np.full((4, 80, 72), -10.0, dtype=np.float32)
    s1[0, 5, 5] = np.nan
    root = tmp_path / "data"
    shutil.copytree(Path(small.stacks[0]).parent, root)
    write_tif(root / "S1_06.tif", s1)
    with pytest.raises(DataError, match=r"S1_06.tif: NaN or infinite values"):
        run(str(root / "S1_{MM}.tif"), small.stacks[1], pixel_model, tmp_path / "out" / "a.tif")
    assert list((tmp_path / "out").iterdir()) == []


def test_cli_reports_bad_inputs_in_one_line(small, tmp_path: Path, capsys) -> None:
    write_tif(tmp_path / "S1.tif", np.zeros((4, 80, 72), dtype=np.float32))
    args = ["--s1", str(tmp_path / "S1.tif"), "--s2", small.stacks[1]]
    assert main(["predict-scene", *args, "--checkpoint", "none.pt", "--out", "x.tif"]) == 2
    err = capsys.readouterr().err
    assert "S1.tif: has 4 band(s), expected 48" in err and "{MM} pattern" in err


def test_pixels_without_any_observation_are_no_data(tmp_path: Path) -> None:
    """A block with S1 -9999 and S2 cloud 255 in every month used to get up to 116 t/ha."""
    rng = np.random.default_rng(0)
    h, w = 64, 96
    s1 = rng.uniform(-20, 0, (4 * MONTHS, h, w)).astype(np.float32)
    s2 = rng.integers(100, 3000, (11 * MONTHS, h, w)).astype(np.uint16)
    s2[10::11] = 20  # every month's cloud probability
    block = (slice(10, 30), slice(20, 50))
    s1[(slice(None), *block)] = S1_NODATA
    s2[(slice(10, None, 11), *block)] = S2_NODATA_CLOUD
    write_tif(tmp_path / "S1.tif", s1)
    write_tif(tmp_path / "S2.tif", s2)
    agbm = run(str(tmp_path / "S1.tif"), str(tmp_path / "S2.tif"), pixel_model, tmp_path / "a.tif",
               window=64, overlap=32)  # fmt: skip
    assert np.isnan(agbm[block]).all()
    outside = np.ones((h, w), dtype=bool)
    outside[block] = False
    assert np.isfinite(agbm[outside]).all()


def test_a_scene_s_year_is_its_files_tag_and_two_years_are_refused(
    small: SceneFiles, tmp_path: Path
) -> None:
    """agbm's composed stacks carry their year (AGBM_YEAR), and the map made from them
    carries it on (`agbm change` reads it); S1 and S2 of two years are no scene."""
    s1, s2 = (Path(shutil.copy(p, tmp_path / Path(p).name)) for p in small.stacks)
    with open_scene(str(s1), str(s2)) as scene:
        assert scene.year is None
    for path, year in ((s1, "2021"), (s2, "2021")):
        with rasterio.open(path, "r+") as dst:
            dst.update_tags(AGBM_YEAR=year)
    with open_scene(str(s1), str(s2)) as scene:
        assert scene.year == 2021
    with rasterio.open(s2, "r+") as dst:
        dst.update_tags(AGBM_YEAR="2022")
    message = r"S2.tif is of 2022 and .*S1.tif of 2021: a scene is one"
    with pytest.raises(DataError, match=message), open_scene(str(s1), str(s2)):
        pass


def test_an_output_that_is_an_input_or_exists_is_refused(
    small: SceneFiles, tmp_path: Path, capsys
) -> None:
    """`--out S1.tif` replaced the imagery with the map, and any existing file was
    overwritten silently."""
    save_model(tmp_path / "m.pt", TemporalUNet("resnet18", decoder_channels=(16,) * 5))
    s1 = tmp_path / "S1.tif"
    s1.write_bytes(Path(small.stacks[0]).read_bytes())
    before = s1.read_bytes()
    base = ["predict-scene", "--s1", str(s1), "--s2", small.stacks[1], "--tta", "none"]
    base += ["--checkpoint", str(tmp_path / "m.pt"), "--window", "64", "--overlap", "16"]
    assert main([*base, "--out", str(s1)]) == 2
    assert "is one of this command's inputs" in capsys.readouterr().err
    assert s1.read_bytes() == before
    out = tmp_path / "map.tif"
    assert main([*base, "--out", str(out)]) == 0
    assert main([*base, "--out", str(out)]) == 2
    assert "exists: pass --overwrite to replace it" in capsys.readouterr().err
    assert main([*base, "--out", str(out), "--overwrite"]) == 0
    assert main([*base, "--out", str(tmp_path)]) == 2  # checked before any model ran
    assert "is a directory" in capsys.readouterr().err


def predict_block(
    scene: Scene, predictor: Predictor, tiling: Tiling, block: Block, **kw: Any
) -> np.ndarray:
    """The blend over `block` of every window reaching into it."""
    return predict_sums(
        scene, predictor, tiling, block, tiling.corners_touching(block), **kw
    ).blend()


@pytest.mark.parametrize("tile", [48])  # 150 x 170 in uneven tiles
def test_a_map_made_block_by_block_equals_the_one_pass_map(tile: int, tmp_path: Path) -> None:
    """A region is predicted tile by tile; every window of the scene's lattice that reaches
    into a tile is blended there, so the map must not depend on the tile size."""
    files = write_scene(tmp_path, (150, 170), seed=3)
    torch.manual_seed(0)
    model = TemporalUNet("resnet18", decoder_channels=(16, 16, 16, 16, 16)).eval()
    predictor = model_predictor([model], torch.device("cpu"), tta="none")
    with open_scene(*files.stacks) as scene:
        tiling = plan_tiling(scene.height, scene.width, window=64, overlap=16)
        whole_scene = (0, 0, scene.height, scene.width)
        (whole,) = predict_block(scene, predictor, tiling, whole_scene, batch_size=4)
        tiled = np.full_like(whole, -1.0)
        for top in range(0, scene.height, tile):
            for left in range(0, scene.width, tile):
                h, w = min(tile, scene.height - top), min(tile, scene.width - left)
                (block,) = predict_block(scene, predictor, tiling, (top, left, h, w), batch_size=4)
                tiled[top : top + h, left : left + w] = block
        predict_scene(scene, predictor, tmp_path / "one.tif", tiling, batch_size=4)
    with rasterio.open(tmp_path / "one.tif") as src:
        one_pass = src.read(1)
    assert np.isfinite(whole).all() and whole.std() > 0
    np.testing.assert_allclose(tiled, whole, atol=1e-3, rtol=0)
    np.testing.assert_allclose(one_pass, whole, atol=1e-3, rtol=0)


def test_a_scene_map_carries_its_calibrated_bounds_as_bands_2_and_3(
    small: SceneFiles, tmp_path: Path, capsys
) -> None:
    save_model(tmp_path / "m.pt", TemporalUNet("resnet18", decoder_channels=(16,) * 5))
    calib = write_calibration(tmp_path / "m.pt", "none", [10.0] * 7, tmp_path / "calib.json")
    base = ["predict-scene", "--s1", small.stacks[0], "--s2", small.stacks[1], "--tta", "none",
            "--window", "64", "--overlap", "16", "--out", str(tmp_path / "map.tif")]  # fmt: skip
    assert main([*base, "--checkpoint", str(tmp_path / "m.pt"), "--calibration", str(calib)]) == 0
    with rasterio.open(tmp_path / "map.tif") as src:
        assert src.count == 3
        assert src.descriptions[1:] == ("lower bound (t/ha)", "upper bound (t/ha)")
        assert "calibrated 90% bounds" in src.tags()["AGBM_BOUNDS"]
        agbm, low, high = src.read()
    width = 10.0 + 0.05  # the histogram bin's upper edge
    np.testing.assert_allclose(high, agbm + width, atol=1e-4)
    np.testing.assert_allclose(low, np.maximum(agbm - width, 0), atol=1e-4)
    save_model(tmp_path / "other.pt", TemporalUNet("resnet18", decoder_channels=(16,) * 5))
    args = [*base, "--checkpoint", str(tmp_path / "other.pt"), "--calibration", str(calib)]
    assert main([*args, "--overwrite"]) == 2  # another model's calibration
    assert "calib.json: calibrated for checkpoints" in capsys.readouterr().err


def test_a_coverage_the_calibration_cannot_give_is_refused_before_the_map(
    small: SceneFiles, tmp_path: Path, capsys
) -> None:
    """--coverage 0.9999 wrote the upper bound as +inf everywhere, without a word."""
    save_model(tmp_path / "m.pt", TemporalUNet("resnet18", decoder_channels=(16,) * 5))
    calib = write_calibration(tmp_path / "m.pt", "none", [10.0] * 7, tmp_path / "calib.json")
    out = tmp_path / "map.tif"
    assert main(["predict-scene", "--s1", small.stacks[0], "--s2", small.stacks[1], "--tta",
                 "none", "--checkpoint", str(tmp_path / "m.pt"), "--calibration", str(calib),
                 "--coverage", "0.9999", "--out", str(out)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "calib.json: --coverage 0.9999 needs at least 9,999 residuals per bin" in err
    assert err.count("\n") == 1 and not out.exists()


def test_a_predictor_without_the_spread_the_map_needs_is_refused(small: SceneFiles) -> None:
    """Blending would broadcast a one-layer prediction into the spread: band 4 would be the
    AGBM again, silently."""

    def plain(image: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        return torch.ones(image.shape[0], 1, *image.shape[-2:])

    with open_scene(*small.stacks) as scene:
        tiling = plan_tiling(scene.height, scene.width, window=64, overlap=16)
        block = (0, 0, scene.height, scene.width)
        with pytest.raises(ValueError, match="gives 1 layer"):
            predict_block(scene, plain, tiling, block, layers=MapLayers(spread=True))
        (agbm,) = predict_block(scene, plain, tiling, block)
    np.testing.assert_allclose(agbm[np.isfinite(agbm)], 1.0)


def test_with_tta_a_calibrated_scene_map_carries_the_passes_spread_as_band_4(
    small: SceneFiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With "hv" the map is the mean of the plain pass p and the flipped one q, and the
    spread their standard deviation |p - q| / 2: the plain map's distance from the mean.
    One window covers the 80 x 72 scene, so no blending mixes the two."""
    ckpt = tmp_path / "m.pt"
    save_model(ckpt, TemporalUNet("resnet18", decoder_channels=(16,) * 5))
    calib = write_calibration(ckpt, "hv", [10.0] * 7, tmp_path / "calib.json")
    base = [
        "predict-scene",
        "--s1",
        small.stacks[0],
        "--s2",
        small.stacks[1],
        "--window",
        "96",
        "--checkpoint",
        str(ckpt),
        "--amp",
        "off",
    ]  # fmt: skip  (bf16 CPUs: compared to 1e-4)
    hv, plain = tmp_path / "hv.tif", tmp_path / "plain.tif"
    assert main([*base, "--tta", "hv", "--calibration", str(calib), "--out", str(hv)]) == 0
    assert main([*base, "--tta", "none", "--out", str(plain)]) == 0
    with rasterio.open(hv) as src:
        assert src.count == 4 and src.descriptions[3] == SPREAD_BAND
        tags, crs, extent = src.tags(), src.crs, shapely.box(*src.bounds)
        mean, _, _, spread = src.read()
    assert "not a calibrated interval" in tags["AGBM_SPREAD"]
    assert (tags["AGBM_CHECKPOINTS"], tags["AGBM_TTA"]) == (file_sha256(ckpt), "hv")
    with rasterio.open(plain) as src:
        assert src.count == 1 and "AGBM_SPREAD" not in src.tags()
        p = src.read(1)
    unclamped = (p > 0) & (mean > 0)  # clamping at 0 would break |p - mean| = |p - q| / 2
    assert unclamped.mean() > 0.5 and spread[unclamped].max() > 0.01
    np.testing.assert_allclose(spread[unclamped], np.abs(p - mean)[unclamped], atol=1e-4)
    # agbm stats accepts the map's own calibration (the tags name its model), not another's
    zones = tmp_path / "zones.gpkg"
    geopandas.GeoDataFrame(geometry=[extent], crs=crs).to_file(zones)
    stats = ["stats", "--zones", str(zones), "--out", str(tmp_path / "s.csv")]
    assert main([*stats, "--map", str(hv), "--calibration", str(calib)]) == 0
    assert main([*stats, "--map", str(plain), "--calibration", str(calib)]) == 2
    assert "plain.tif's" in capsys.readouterr().err  # the plain map's TTA is none, not hv


def test_the_library_shows_no_progress_bar_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Long loops take `progress` (off in the library, on from the CLI): predict_scene's."""
    files = write_scene(tmp_path, (64, 64), seed=3)

    def constant(image: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        return torch.full((image.shape[0], 1, *image.shape[-2:]), 7.0)

    with open_scene(*files.stacks) as scene:
        tiling = plan_tiling(scene.height, scene.width, window=32, overlap=0)
        for progress in (False, True):
            out = tmp_path / f"{progress}.tif"
            predict_scene(scene, constant, out, tiling, batch_size=4, progress=progress)
            assert ("predict-scene" in capsys.readouterr().err) is progress
