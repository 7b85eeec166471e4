"""A synthetic BioMassters data set in the exact real layout, learnable, for demos and tests.

The real data (~250 GB) cannot ship with the code, so `agbm synth` writes chips that look
like it to every reader: the same directories, file names, metadata CSVs, band counts,
dtypes, value ranges and no-data conventions, with the difficulties that matter:

* a forest scene (canopy cover with clear-cuts, stand height) seen through a year of
  phenology and snow, S2 reflectance 0..10000 and S1 backscatter about -25..0 dB;
* missing months (more S2 in winter), cloudy S2 months whose reflectance is corrupted,
  no-data patches and whole missing S1 orbits;
* a target that is a smooth, non-linear function of the clean growing-season NDVI and VH
  backscatter (so it is learnable from the inputs, but not by a per-pixel linear fit),
  many zeros on clear-cuts and a few outliers above 400 t/ha, as in the LiDAR targets.

The same seed gives the same bytes: every chip draws from its own seeded generator.
"""

from __future__ import annotations

import csv
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.crs
from rasterio.transform import Affine
from tqdm import tqdm

from agbm.data.bands import MONTH_NAMES, MONTHS, PIXEL_M, S1_NODATA, S2_NODATA_CLOUD
from agbm.data.geotiff import write_geotiff
from agbm.data.layout import AGBM_METADATA_NAME, FEATURES_METADATA_NAMES, features_path, target_path
from agbm.errors import DataError
from agbm.io import replacing, writable_folder

#: ETRS89 / TM35FIN, the national grid of Finland where the real chips lie; 10 m pixels.
#: Built once: parsing the EPSG code for every file costs a third of the write time.
CRS = rasterio.crs.CRS.from_epsg(3067)

#: Greenness of the vegetation through the year (September ... August); plain floats keep
#: the arithmetic in float32 (a NumPy float64 scalar would promote every array).
PHENOLOGY = [0.8, 0.5, 0.2, 0.0, 0.0, 0.0, 0.1, 0.3, 0.7, 1.0, 1.0, 0.95]


SNOW = [0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 0.8, 0.2, 0.0, 0.0, 0.0, 0.0]


#: Probability that a month's S2 image is missing: high in the dark, snowy months.
S2_MISSING = [0.08, 0.1, 0.25, 0.35, 0.3, 0.2, 0.1, 0.08, 0.05, 0.05, 0.05, 0.05]


S1_MISSING = 0.03


CLOUDY = 0.3


#: Months whose clean NDVI and VH define the target (May ... September).
GROWING_SEASON = (0, 8, 9, 10, 11)


#: Reflectance (x 10,000) of the bands B2 ... B12 for bare ground (g = 0) and the change at
#: full greenness (g = 1): vegetation is dark in red and SWIR, bright in NIR.
S2_BASE = np.array([800, 1000, 1200, 1100, 1500, 1700, 1800, 1850, 2200, 1500], dtype=np.float32)


S2_GREEN = np.array([-500, -500, -900, -300, 1500, 2200, 2600, 2500, -1000, -900], np.float32)


S2_SNOW = np.array([8500, 8300, 8000, 7800, 7500, 7300, 7000, 6900, 600, 500], dtype=np.float32)


S2_CLOUD = np.array([7000, 7000, 7100, 7100, 7000, 7000, 6900, 6900, 5000, 4200], np.float32)


OUTLIER_FRACTION = 5e-4


#: A year's stand growth: stand height gained per chip (about 1.5-4 t/ha of AGB a year).
GROWTH = (0.01, 0.03)
#: The share of chips that get a new clear-cut in a year, and a thinning (cover x 0.6).
CLEAR_CUT, THINNING = 0.25, 0.15
#: The record of what a synthetic root is (`agbm synth`), which `next_year` replays.
RECORD = "synth.json"

#: Keeps the random streams of train and test chips apart.
SPLIT_CODES = {"train": 0, "test": 1}


def smooth_field(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise, standardised: a random landscape with features ~sigma px."""
    spectrum = np.fft.rfft2(rng.standard_normal((size, size)))
    ky = np.fft.fftfreq(size)[:, None]
    kx = np.fft.rfftfreq(size)[None, :]
    spectrum *= np.exp(-2.0 * (np.pi * sigma) ** 2 * (kx**2 + ky**2))
    field = np.fft.irfft2(spectrum, s=(size, size))
    return ((field - field.mean()) / (field.std() + 1e-12)).astype(np.float32)


class NoiseBank:
    """Cheap Gaussian noise images: random crops of one larger noise field.

    Drawing ~10 million normals per chip dominated generation time; crops at random offsets
    of a 4x larger field are as good as fresh noise for a synthetic sensor and cost nothing.
    """

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        self.rng = rng
        self.size = size
        self.field = rng.standard_normal((2 * size, 2 * size), dtype=np.float32)

    def draw(self, bands: int) -> np.ndarray:
        """Standard-normal noise `[bands, size, size]`."""
        offsets = self.rng.integers(0, self.size + 1, size=(bands, 2))
        return np.stack([self.field[r : r + self.size, c : c + self.size] for r, c in offsets])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def forest_scene(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Canopy cover in [0, 1] with sharp-edged clear-cuts (exact 0), stand height in [0.4, 1]."""
    cover = _sigmoid(1.5 * smooth_field(rng, size, 12) + 0.8)
    cover[smooth_field(rng, size, 20) < -0.6] = 0.0
    height = 0.4 + 0.6 * _sigmoid(2.0 * smooth_field(rng, size, 8))
    return cover.astype(np.float32), height.astype(np.float32)


def clean_s2(cover: np.ndarray, month: int) -> np.ndarray:
    """Cloud-free S2 reflectance `[10, H, W]` (float) of the scene in one month."""
    green = cover * (0.4 + 0.6 * PHENOLOGY[month]) + (1.0 - cover) * 0.3 * PHENOLOGY[month]
    refl = S2_BASE[:, None, None] + S2_GREEN[:, None, None] * green[None]
    snow = (SNOW[month] * (1.0 - 0.6 * cover))[None]
    return refl * (1.0 - snow) + S2_SNOW[:, None, None] * snow


def clean_vh_vv(cover: np.ndarray, height: np.ndarray, month: int) -> tuple[np.ndarray, ...]:
    """Noise-free VH and VV backscatter (dB): volume scattering grows with canopy biomass."""
    volume = cover * height
    frozen = -2.0 * SNOW[month]
    vh = -24.0 + 9.0 * volume**0.7 + 1.0 * PHENOLOGY[month] + frozen
    vv = -15.0 + 5.0 * volume**0.5 + frozen
    return vh, vv


def target_from_inputs(ndvi: np.ndarray, vh: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """AGBM (t/ha) as a smooth non-linear function of growing-season NDVI and VH, plus outliers.

    The product of saturating terms and the spatial smoothing keep a per-pixel linear model
    well short of what a convolutional, temporal model can learn.
    """
    return with_outliers(smooth_target(ndvi, vh), *draw_outliers(rng, ndvi.shape))


def smooth_target(ndvi: np.ndarray, vh: np.ndarray) -> np.ndarray:
    """The target before its outliers: what the inputs say, smoothed (`target_from_inputs`)."""
    greenness = np.clip((ndvi - 0.2) / 0.6, 0.0, 1.0) ** 1.3
    volume = np.clip((vh + 23.0) / 9.0, 0.0, 1.0) ** 1.2
    agbm = 340.0 * greenness * volume
    spectrum = np.fft.rfft2(agbm)
    ky = np.fft.fftfreq(agbm.shape[0])[:, None]
    kx = np.fft.rfftfreq(agbm.shape[1])[None, :]
    agbm = np.fft.irfft2(spectrum * np.exp(-2.0 * (np.pi * 1.5) ** 2 * (kx**2 + ky**2)), agbm.shape)
    return np.where(agbm > 1.0, agbm, 0.0)


def draw_outliers(
    rng: np.random.Generator, shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Where the LiDAR-like outliers are (a mask) and their values, t/ha."""
    outliers = rng.random(shape) < OUTLIER_FRACTION
    return outliers, rng.uniform(450.0, 3000.0, size=int(outliers.sum()))


def with_outliers(agbm: np.ndarray, where: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`agbm` as float32 with the outliers put in."""
    agbm = agbm.copy()
    agbm[where] = values
    return agbm.astype(np.float32)


def observed_s2(
    rng: np.random.Generator, noise: NoiseBank, clean: np.ndarray, month: int
) -> np.ndarray:
    """uint16 S2 image `[11, H, W]`: noise, maybe clouds, maybe a no-data patch."""
    size = clean.shape[-1]
    refl = clean * (1.0 + 0.03 * noise.draw(10))
    cloud = np.clip(2.0 + 2.0 * noise.draw(1)[0], 0.0, 10.0)
    if rng.random() < CLOUDY + 0.2 * (month in (1, 2)):
        amount = np.clip(0.8 * smooth_field(rng, size, 16) + rng.uniform(-0.6, 0.9), 0.0, 1.0)
        refl = refl * (1.0 - amount) + S2_CLOUD[:, None, None] * amount
        cloud = np.maximum(cloud, 100.0 * amount)
    image = np.empty((11, size, size), dtype=np.uint16)
    image[:10] = np.clip(np.rint(refl), 0, 10000)
    image[10] = np.rint(cloud)
    if rng.random() < 0.1:
        rows, cols = _patch(rng, size)
        image[:10, rows, cols] = 0
        image[10, rows, cols] = S2_NODATA_CLOUD
    return image


def observed_s1(
    rng: np.random.Generator, noise: NoiseBank, cover: np.ndarray, height: np.ndarray, month: int
) -> np.ndarray:
    """float32 S1 image `[4, H, W]` (VV, VH ascending; VV, VH descending) with speckle and gaps."""
    vh, vv = clean_vh_vv(cover, height, month)
    image = np.stack([vv, vh, vv + 0.5, vh + 0.4]).astype(np.float32)
    image += noise.draw(4)
    draw = rng.random()
    if draw < 0.1:
        orbit = rng.integers(2)
        image[2 * orbit : 2 * orbit + 2] = S1_NODATA
    elif draw < 0.15:
        rows, cols = _patch(rng, cover.shape[0])
        image[:, rows, cols] = S1_NODATA
    return image


def _patch(rng: np.random.Generator, size: int) -> tuple[slice, slice]:
    """A random rectangle covering 5-50% of each side."""
    h, w = (int(rng.integers(size // 20 + 1, size // 2 + 1)) for _ in range(2))
    top, left = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
    return slice(top, top + h), slice(left, left + w)


def chip_ids(rng: np.random.Generator, count: int) -> list[str]:
    """`count` distinct 8-hex-character chip ids, as the real data names chips."""
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < count:
        chip = f"{int(rng.integers(0, 2**32)):08x}"
        if chip not in seen:
            seen.add(chip)
            ids.append(chip)
    return ids


def _write(path: Path, array: np.ndarray, transform, nodata: float | None = None) -> None:
    """A chip file as the challenge's are: plain strips, georeferenced on the national grid."""
    write_geotiff(path, array, CRS, transform, nodata, tiled=False)


@dataclass
class ChipScene:
    """What a synthetic chip shows, before any sensor sees it: canopy cover and stand height
    on its 10 m grid, and the outliers of its target (kept from year to year)."""

    cover: np.ndarray
    height: np.ndarray
    transform: Affine
    outliers: tuple[np.ndarray, np.ndarray]

    def target(self) -> np.ndarray:
        """The chip's AGBM (t/ha): a function of its clean growing-season inputs."""
        ndvi, vh = [], []
        for month in GROWING_SEASON:
            s2 = clean_s2(self.cover, month)
            ndvi.append((s2[6] - s2[2]) / (s2[6] + s2[2]))
            vh.append(clean_vh_vv(self.cover, self.height, month)[0])
        return with_outliers(
            smooth_target(np.mean(ndvi, axis=0), np.mean(vh, axis=0)), *self.outliers
        )


def draw_scene(rng: np.random.Generator, size: int) -> ChipScene:
    """A chip's scene, drawn from the start of its generator's stream, whose rest draws
    its imagery (`write_scene`)."""
    cover, height = forest_scene(rng, size)
    x0 = float(rng.integers(20_000, 70_000)) * PIXEL_M
    y0 = float(rng.integers(665_000, 770_000)) * PIXEL_M
    transform = Affine(PIXEL_M, 0.0, x0, 0.0, -PIXEL_M, y0)  # north-up, 10 m
    return ChipScene(cover, height, transform, draw_outliers(rng, cover.shape))


def next_scene(scene: ChipScene, rng: np.random.Generator) -> ChipScene:
    """The scene a year later: every stand grows; a chip may get a clear-cut (cover 0 in a
    blob, its target 0) or a thinning (cover x 0.6 in a blob). The outliers stay."""
    size = scene.cover.shape[0]
    height = np.minimum(scene.height + rng.uniform(*GROWTH), 1.0).astype(np.float32)
    cover = scene.cover.copy()
    if rng.random() < CLEAR_CUT:
        cover[smooth_field(rng, size, 10) > 1.0] = 0.0
    if rng.random() < THINNING:
        cover[smooth_field(rng, size, 12) > 0.8] *= 0.6
    return ChipScene(cover, height, scene.transform, scene.outliers)


def write_scene(
    root: Path, chip_id: str, split: str, scene: ChipScene, rng: np.random.Generator
) -> list[str]:
    """Write a scene's target and a year of imagery of it (noise, clouds and gaps drawn from
    `rng`); returns the feature file names written."""
    cover, height, transform = scene.cover, scene.height, scene.transform
    _write(target_path(root, chip_id, split), scene.target()[None], transform)
    noise = NoiseBank(rng, cover.shape[0])
    written = []
    s1_missing = [rng.random() < S1_MISSING for _ in range(MONTHS)]
    s2_missing = [rng.random() < S2_MISSING[m] for m in range(MONTHS)]
    if all(s1_missing):  # a chip always has at least one month
        s1_missing[int(rng.integers(MONTHS))] = False
    for month in range(MONTHS):
        if not s1_missing[month]:
            path = features_path(root, chip_id, "S1", month, split)
            _write(path, observed_s1(rng, noise, cover, height, month), transform, S1_NODATA)
            written.append(path.name)
        if not s2_missing[month]:
            path = features_path(root, chip_id, "S2", month, split)
            _write(path, observed_s2(rng, noise, clean_s2(cover, month), month), transform)
            written.append(path.name)
    return written


def _s3_paths(folder: str, filename: str) -> list[str]:
    return [
        f"s3://drivendata-competition-biomassters-public-{region}/{folder}/{filename}"
        for region in ("us", "eu", "as")
    ]


def _file_facts(path: Path) -> tuple[int, int]:
    """Size and CRC-32 (zlib) of a file, for the metadata's size and cksum columns."""
    data = path.read_bytes()
    return len(data), zlib.crc32(data)


def write_metadata(root: Path, chips: dict[str, dict[str, list[str]]]) -> None:
    """Both metadata CSVs with the published names and columns (`chips[split][chip]` = files)."""
    with replacing(root / FEATURES_METADATA_NAMES[0]) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "filename",
                "chip_id",
                "satellite",
                "split",
                "month",
                "size",
                "cksum",
                "s3path_us",
                "s3path_eu",
                "s3path_as",
                "corresponding_agbm",
            ]
        )
        for split, by_chip in chips.items():
            for chip, files in by_chip.items():
                for name in files:
                    size, crc = _file_facts(root / f"{split}_features" / name)
                    satellite, month = name[9:11], MONTH_NAMES[int(name[12:14])]
                    writer.writerow(
                        [
                            name,
                            chip,
                            satellite,
                            split,
                            month,
                            size,
                            crc,
                            *_s3_paths(f"{split}_features", name),
                            f"{chip}_agbm.tif",
                        ]
                    )
    with replacing(root / AGBM_METADATA_NAME) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["filename", "chip_id", "size", "cksum", "s3path_us", "s3path_eu", "s3path_as"]
        )
        for chip in chips.get("train", {}):
            name = f"{chip}_agbm.tif"
            size, crc = _file_facts(root / "train_agbm" / name)
            writer.writerow([name, chip, size, crc, *_s3_paths("train_agbm", name)])


def generate(
    out: Path | str,
    chips: int,
    test_chips: int,
    seed: int = 0,
    size: int = 256,
    progress: bool = False,
) -> dict[str, list[str]]:
    """Write a complete synthetic data set to `out`; returns the chip ids of each split."""
    if chips < 1 or test_chips < 0:
        raise ValueError("need at least one training chip and a non-negative test count")
    if size < 32 or size % 32:
        raise ValueError(f"size must be a positive multiple of 32, got {size}")
    record = {"chips": chips, "test_chips": test_chips, "size": size, "years": [seed]}
    return _write_year(Path(out), record, progress)


def next_year(
    root: Path | str, out: Path | str, seed: int, progress: bool = False
) -> dict[str, list[str]]:
    """Write to `out` the chips of the synthetic root `root` one year later: the same chips
    on the same grids, whose stands grew and some of which were cut or thinned
    (`next_scene`, drawn from `seed`), seen again through that year's own clouds, gaps and
    noise; with their targets, so that the two roots are a pair of years with known change.
    Deterministic; `root` may itself be a later year (the years are replayed in order).

    root: a root written by `generate` or `next_year` (its `synth.json` says how).
    out: the new root. seed: the new year's random seed.
    """
    record = read_record(root)
    return _write_year(Path(out), {**record, "years": [*record["years"], seed]}, progress)


def read_record(root: Path | str) -> dict:
    """What the synthetic root `root` is (`RECORD`), or a one-line `DataError` naming it."""
    path = Path(root) / RECORD
    try:
        record = json.loads(path.read_text())
        keys = ("chips", "test_chips", "size", "years")
        return {key: record[key] for key in keys}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(
            f"{path}: not the record of an agbm synth root ({error}): the next year is made "
            "only of synthetic chips"
        ) from None


def _scene_of_year(
    years: list[int], code: int, index: int, size: int
) -> tuple[ChipScene, np.random.Generator]:
    """A chip's scene in the last of `years` (seeds, the first its data set's), and the
    generator of that year's imagery, replaying each year's changes in order."""
    rng = np.random.default_rng([years[0], code, index])
    scene = draw_scene(rng, size)
    for seed in years[1:]:
        rng = np.random.default_rng([seed, code, index])
        scene = next_scene(scene, rng)
    return scene, rng


def _write_year(root: Path, record: dict, progress: bool) -> dict[str, list[str]]:
    """Write the data set `record` says (`generate`'s, or a later year of it) to `root`."""
    writable_folder(root)  # a folder that cannot be written fails here, in one line
    chips, years = record["chips"], record["years"]
    ids = chip_ids(np.random.default_rng(years[0]), chips + record["test_chips"])
    splits = {"train": ids[:chips], "test": ids[chips:]}
    written: dict[str, dict[str, list[str]]] = {}
    jobs = [(split, i, chip) for split, group in splits.items() for i, chip in enumerate(group)]
    for split in splits:
        (root / f"{split}_features").mkdir(parents=True, exist_ok=True)
        (root / f"{split}_agbm").mkdir(parents=True, exist_ok=True)
        written[split] = {}
    for split, index, chip in tqdm(jobs, desc="synth", unit="chip", disable=not progress):
        scene, rng = _scene_of_year(years, SPLIT_CODES[split], index, record["size"])
        written[split][chip] = write_scene(root, chip, split, scene, rng)
    write_metadata(root, written)
    with replacing(root / RECORD) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    return splits
