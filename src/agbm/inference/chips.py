"""`agbm predict`: AGBM maps for every chip of a split, in the challenge's submission format.

One float32 `{chip}_agbm.tif` per chip, with the georeference of the chip's input files.
Test-time augmentation averages the predictions of flipped (and with `d4`, rotated) inputs,
each flipped back; several checkpoints are averaged as an ensemble. Runs are resumable
(chips already written are skipped), every file is written atomically, and under
`torchrun` the chips are sharded across processes so that none is written twice.
"""

from __future__ import annotations

import contextlib
import tarfile
from pathlib import Path

import numpy as np
import torch.distributed as dist
from torch.utils.data import DataLoader
from tqdm import tqdm

from agbm.data.dataset import ChipDataset
from agbm.data.geotiff import write_geotiff
from agbm.data.layout import prediction_path
from agbm.data.normalise import model_input
from agbm.data.raw import read_prediction
from agbm.data.sources import ChipSource, open_source
from agbm.errors import DataError
from agbm.inference.options import InferenceOptions
from agbm.inference.tta import load_for_inference, predict_spread, shared_conventions
from agbm.io import (
    check_output_file,
    claim_record,
    output_folder,
    remove_stale_temporaries,
    replacing,
    write_record,
)
from agbm.runtime import autocast_dtype, init_runtime


def write_prediction(path: Path, agbm: np.ndarray, geo: dict) -> None:
    """Write a chip's map as the challenge's submission files are: a plain float32
    single-band GeoTIFF with the input's CRS and transform (`geo`), atomically."""
    write_geotiff(path, agbm.astype(np.float32), tiled=False, **geo)


def is_predicted(path: Path, shape: tuple[int, ...]) -> bool:
    """Whether `path` holds a complete, valid prediction (a zero-byte, truncated, all-NaN or
    wrong-size file left by a crash or by hand does not count)."""
    try:
        read_prediction(path, shape)
    except DataError:
        return False
    return True


#: What a prediction folder records of the run that filled it.
RECORD = "predictions.json"


def claim_predictions(out: Path, record: dict, overwrite: bool) -> None:
    """Refuse to add to `out` predictions of other checkpoints or TTA (a folder of two
    models' maps, archived as one submission); `overwrite` starts it again under `record`."""
    if overwrite:
        write_record(out / RECORD, record)
    else:
        claim_record(out / RECORD, record, "pass `overwrite` to redo them all, or another `out`")


def predict(
    data: Path | str,
    out: Path | str,
    *,
    options: InferenceOptions,
    split: str = "test",
    workers: int = 2,
    overwrite: bool = False,
    archive: Path | str | None = None,
) -> list[str]:
    """Predict every chip of `split` of `data` not yet in `out` by the model of `options`;
    returns the chip ids this process wrote. `workers`: the chip loader's processes. A
    folder holding predictions of other checkpoints or TTA is refused unless `overwrite`,
    which redoes every chip; `archive`: also pack the split's predictions into this
    .tar.gz. With a calibration in `options` (of these checkpoints and TTA), each chip also
    gets its bounds, `{chip}_low.tif` and `{chip}_high.tif`, and with several models or TTA
    passes their spread, `{chip}_spread.tif` (the members' disagreement: information, not a
    calibrated interval): `InferenceOptions.layers`."""
    # Missing checkpoints and a calibration of another model fail before any work.
    layers = options.layers()
    data, out = Path(data), Path(out)
    runtime = init_runtime()
    if runtime.main:
        layers.warn()
    source = open_source(data, split)
    chips = source.chip_ids()[runtime.rank :: runtime.world]
    todo = [
        c for c in chips if overwrite or not is_predicted(prediction_path(out, c), source.size(c))
    ]
    record = options.record() | {"split": split}
    with contextlib.ExitStack() as outputs:  # writable before the models run
        outputs.enter_context(output_folder(out))
        if archive:
            check_output_file(archive)
        if runtime.main:
            remove_stale_temporaries(out)
        models = load_for_inference(options.checkpoints, runtime.device)
        conventions = shared_conventions(models)
        if runtime.main:  # before anything is written, once the models are known to load
            claim_predictions(out, record, overwrite)
            if len(todo) < len(chips):
                tqdm.write(f"skipped {len(chips) - len(todo)} chip(s) already predicted in {out}")
        amp_dtype = autocast_dtype(options.amp, runtime.device, inference=True)
        dataset = ChipDataset(data, split, todo, targets=False, raw=True)
        loader = DataLoader(
            dataset,
            batch_size=options.batch_size,
            num_workers=workers,
            pin_memory=runtime.device.type == "cuda",
        )
        with tqdm(total=len(todo), desc="predict", unit="chip", disable=not runtime.main) as bar:
            for batch in loader:
                image, present = model_input(batch, runtime.device, conventions)
                mean, spread = predict_spread(
                    models, image, present, tta=options.tta, amp_dtype=amp_dtype
                )
                agbm, spreads = mean.cpu().numpy(), spread.cpu().numpy()
                for chip_id, chip_agbm, chip_spread in zip(
                    batch["chip_id"], agbm[:, 0], spreads[:, 0], strict=True
                ):
                    geo = dataset.source.georeference(chip_id)  # the input's CRS, raw or cached
                    files = {}
                    if layers.bounds is not None:
                        files["low"], files["high"] = layers.bounds(chip_agbm)
                    if layers.spread:
                        files["spread"] = chip_spread
                    for layer, values in files.items():  # the map last: it marks the chip done
                        write_prediction(prediction_path(out, chip_id, layer), values, geo)
                    write_prediction(prediction_path(out, chip_id), chip_agbm, geo)
                bar.update(len(batch["chip_id"]))
        if runtime.world > 1:
            dist.barrier()
        if archive and runtime.main:
            pack(out, Path(archive), source)
    return todo


def pack(pred_dir: Path, archive: Path, source: ChipSource) -> None:
    """Pack the split's predictions into a .tar.gz for upload (atomically): exactly one valid
    `{chip}_agbm.tif` per chip of `source`, nothing else of the folder (dotfiles such as
    macOS's `._*`, stray files); a missing or malformed prediction is an error, not a gap."""
    paths = [prediction_path(pred_dir, c) for c in source.chip_ids()]
    for chip, path in zip(source.chip_ids(), paths, strict=True):
        try:
            read_prediction(path, source.size(chip))
        except DataError as err:
            raise DataError(f"not archiving {pred_dir}: {err}") from None
    with replacing(archive) as tmp, tarfile.open(tmp, "w:gz") as tar:
        for path in paths:
            tar.add(path, arcname=path.name)
