"""A synthetic adaptation experiment: a model trained densely on region A is adapted to a
region B, whose biomass relates to the imagery at another scale, from sparse labels.

Region B is a synthetic set of another seed whose targets are `SCALE` times what the
imagery says under A's relation. Its training chips give up ~`points` labels each: GEDI-
like 12.5 m footprints at random places, valued at the footprint mean of B's truth. Three
models are scored on B's test chips (dense truth, never labelled): A's model as it is,
A's model fine-tuned on B's labels, and the same model trained on the same labels from
scratch. `bench/adapt.py` runs it larger; tests/training/test_adapt.py asserts it (and
`bench/coverage.py` and the tests' `learned` fixture train its tiny model, `train_tiny`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from pyproj import Transformer

from agbm.data.layout import list_chips, target_path
from agbm.data.synth import generate
from agbm.evaluation import evaluate
from agbm.inference.chips import predict
from agbm.inference.options import InferenceOptions
from agbm.labels.frame import labels_frame, write_labels
from agbm.training import TrainConfig, train

#: Region B's biomass per unit of A's.
SCALE = 1.8


@dataclass(frozen=True)
class Scores:
    """RMSE per chip of region B's test chips, t/ha, of the three models (in one order):
    paired, for a comparison whose band comes from the chips' spread."""

    unadapted_chips: np.ndarray
    finetuned_chips: np.ndarray
    scratch_chips: np.ndarray

    @property
    def unadapted(self) -> float:
        """The challenge's score (the average per-chip RMSE) of region A's model."""
        return float(self.unadapted_chips.mean())

    @property
    def finetuned(self) -> float:
        return float(self.finetuned_chips.mean())

    @property
    def scratch(self) -> float:
        return float(self.scratch_chips.mean())


def make_region_b(root: Path, chips: int, test_chips: int, size: int, seed: int) -> Path:
    """Synthetic chips whose targets are `SCALE` times their imagery's A-relation."""
    generate(root, chips, test_chips, seed, size)
    for split in ("train", "test"):
        for chip in list_chips(root, split):
            path = target_path(root, chip, split)
            with rasterio.open(path, "r+") as dst:
                dst.write(dst.read() * SCALE)
    return root


def sample_labels(root: Path, out: Path, points: int, seed: int, misplaced_px: float = 0.0) -> Path:
    """~`points` footprints per training chip of `root`, valued at the mean of the chip's
    truth over each 12.5 m disc (sub-sampled), written as a labels file; with
    `misplaced_px`, each is recorded that many pixels away from where it was measured, in a
    random direction (GEDI's geolocation error is ~10 m, one pixel)."""
    rng = np.random.default_rng(seed)
    lon, lat, agbd = [], [], []
    for chip in list_chips(root, "train"):
        with rasterio.open(target_path(root, chip, "train")) as src:
            truth, transform, crs = src.read(1), src.transform, src.crs
        to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        height, width = truth.shape
        rows, cols = rng.uniform(2, height - 2, points), rng.uniform(2, width - 2, points)
        sub = (np.arange(8) + 0.5) / 8
        for row, col in zip(rows, cols, strict=True):
            ys, xs = np.meshgrid(np.arange(-2, 3), np.arange(-2, 3), indexing="ij")
            ys, xs = ys + np.floor(row), xs + np.floor(col)
            inside = (
                ((ys[..., None, None] + sub[:, None] - row) ** 2
                 + (xs[..., None, None] + sub[None, :] - col) ** 2) <= 1.25**2
            ).mean(axis=(-2, -1))  # fmt: skip
            values = truth[ys.astype(int), xs.astype(int)]
            agbd.append(float((values * inside).sum() / inside.sum()))
            angle = rng.uniform(0, 2 * np.pi)
            moved = (col + misplaced_px * np.cos(angle), row + misplaced_px * np.sin(angle))
            x, y = transform @ moved
            lon_lat = to_lonlat.transform(x, y)
            lon.append(lon_lat[0])
            lat.append(lon_lat[1])
    return write_labels(labels_frame(lon, lat, agbd, 10.0, 12.5, None, "synthetic"), out)


def cached(data: Path) -> Path:
    """`data`'s train split as an `agbm prepare` cache beside it (made once, then reused):
    the same chips bit for bit, read about 5x faster than 24 GeoTIFFs a chip, which is most
    of a tiny model's training time."""
    from agbm.data.cache import is_cache, prepare

    if is_cache(data):
        return data
    cache = data.with_name(f"{data.name}-cache")
    prepare(data, cache, "train")  # converts only the chips not there yet
    return cache


def train_tiny(data: Path, out: Path, epochs: int, **settings: object) -> Path:
    """The tiny model trained on `data`'s train split (read from its cache, `cached`)."""
    config = TrainConfig(
        data=str(cached(data)), out=str(out), backbone="test_efficientnet", pretrained="none",
        recipe="agbm", epochs=epochs, batch_size=4, decoder_channels=[32, 24, 16, 16, 16],
        folds=4, lr=2e-3, warmup_epochs=0.5, workers=0, seed=0, amp="off", **settings,
    )  # fmt: skip
    train(config)
    return out / "last.pt"


def _score(checkpoint: Path, data: Path, out: Path) -> np.ndarray:
    """The checkpoint's RMSE per test chip of `data`, in the chips' order."""
    options = InferenceOptions((checkpoint,), tta="none", amp="off")
    predict(data, out, options=options, workers=0, overwrite=True)
    return evaluate(out, data, "test").per_chip


def run(
    root: Path,
    chips: int = 16,
    points: int = 30,
    epochs: int = 12,
    size: int = 32,
    misplaced_px: float = 0.0,
    test_chips: int | None = None,
    **tuning: object,
) -> Scores:
    """The experiment in `root`: (unadapted, fine-tuned, scratch) RMSEs on B's `test_chips`
    (default: a quarter of `chips`, at least 4); `tuning`: more settings of the fine-tuning
    run (`shift_loss`, `label_weights`)."""
    region_a = root / "A"
    generate(region_a, chips, 0, 1, size)
    region_b = make_region_b(root / "B", chips, test_chips or max(4, chips // 4), size, 2)
    labels = sample_labels(region_b, root / "labels.gpkg", points, 3, misplaced_px)
    model_a = train_tiny(region_a, root / "runA", epochs)
    tuned = train_tiny(
        region_b, root / "tuned", epochs, labels=str(labels), init=str(model_a), **tuning
    )
    scratch = train_tiny(region_b, root / "scratch", epochs, labels=str(labels))
    return Scores(
        _score(model_a, region_b, root / "pred_a"),
        _score(tuned, region_b, root / "pred_tuned"),
        _score(scratch, region_b, root / "pred_scratch"),
    )
