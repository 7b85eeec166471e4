"""`agbm predict`: AGBM maps for every chip of a split, in the challenge's submission format.

One float32 `{chip}_agbm.tif` per chip, with the georeference of the chip's input files.
Test-time augmentation averages the predictions of flipped (and with `d4`, rotated) inputs,
each flipped back; several checkpoints are averaged as an ensemble. Runs are resumable
(chips already written are skipped), every file is written atomically, and under
`torchrun` the chips are sharded across processes so that none is written twice.
"""

from __future__ import annotations

import argparse
import contextlib
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import rasterio
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from tqdm import tqdm

from agbm.cache import ChipSource, open_source
from agbm.data import (
    SPLITS,
    ChipDataset,
    DataError,
    InputConventions,
    model_input,
    prediction_path,
    read_prediction,
)
from agbm.io import output_folder, remove_stale_temporaries, replacing
from agbm.model import load_model
from agbm.runtime import add_amp_option, autocast_dtype, init_runtime

Transform = tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]


def _flip(dims: tuple[int, ...]) -> Transform:
    def apply(x: torch.Tensor) -> torch.Tensor:
        return x.flip(dims) if dims else x

    return apply, apply  # a flip is its own inverse


def _turn(k: int, flip: bool) -> Transform:
    def forward(x: torch.Tensor) -> torch.Tensor:
        x = x.rot90(k, dims=(-2, -1))
        return x.flip(-1) if flip else x

    def inverse(x: torch.Tensor) -> torch.Tensor:
        x = x.flip(-1) if flip else x
        return x.rot90(-k, dims=(-2, -1))

    return forward, inverse


#: Test-time augmentations: (forward, inverse) pairs acting on the last two (spatial) dims.
#: "hv" is the BioMassters winner's submission: the plain pass and the pass flipped on both
#: axes (its script's `--tta 4`).
TTA: dict[str, list[Transform]] = {
    "none": [_flip(())],
    "hv": [_flip(()), _flip((-2, -1))],
    "flips": [_flip(()), _flip((-1,)), _flip((-2,)), _flip((-2, -1))],
    "d4": [_turn(k, flip) for flip in (False, True) for k in range(4)],
}


@torch.no_grad()
def predict_batch(
    models: Sequence[torch.nn.Module],
    image: torch.Tensor,
    present: torch.Tensor,
    tta: str = "flips",
    amp_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Mean prediction `[B, 1, H, W]` (t/ha, >= 0) over models and test-time augmentations."""
    total = torch.zeros(image.shape[0], 1, *image.shape[-2:], device=image.device)
    transforms = TTA[tta]
    autocast = (
        torch.autocast(image.device.type, dtype=amp_dtype)
        if amp_dtype
        else contextlib.nullcontext()
    )
    for model in models:
        for forward, inverse in transforms:
            with autocast:
                pred = model(forward(image), present)
            total += inverse(pred.float())
    return (total / (len(models) * len(transforms))).clamp_(min=0)


def load_for_inference(
    checkpoints: Sequence[Path | str], device: torch.device
) -> list[torch.nn.Module]:
    """The checkpoints' models on `device` in eval mode, channels-last as they trained (the
    layout convolutions run fastest in on GPUs, and no slower on CPUs)."""
    return [load_model(c).to(device, memory_format=torch.channels_last).eval() for c in checkpoints]


def shared_conventions(models: Sequence[torch.nn.Module]) -> InputConventions:
    """The input conventions every model of an ensemble was trained with: one input serves
    them all, so models made with different conventions cannot be averaged."""
    found = {model.conventions for model in models}
    if len(found) > 1:
        names = ", ".join(sorted(c.name for c in found))
        raise ValueError(
            f"the checkpoints were trained on inputs made by different conventions ({names}); "
            "an ensemble needs checkpoints of one kind"
        )
    return found.pop()


def write_prediction(path: Path, agbm: np.ndarray, geo: dict) -> None:
    """Write a float32 single-band GeoTIFF atomically (temporary name, then rename)."""
    profile = {
        "driver": "GTiff",
        "width": agbm.shape[1],
        "height": agbm.shape[0],
        "count": 1,
        "dtype": "float32",
        **geo,
    }
    with replacing(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(agbm.astype(np.float32)[None])


def is_predicted(path: Path, shape: tuple[int, ...]) -> bool:
    """Whether `path` holds a complete, valid prediction (a zero-byte, truncated, all-NaN or
    wrong-size file left by a crash or by hand does not count)."""
    try:
        read_prediction(path, shape)
    except DataError:
        return False
    return True


def predict(
    data: Path | str,
    checkpoints: Sequence[Path | str],
    out: Path | str,
    split: str = "test",
    tta: str = "flips",
    batch_size: int = 8,
    amp: str = "auto",
    workers: int = 2,
    overwrite: bool = False,
    archive: Path | str | None = None,
) -> list[str]:
    """Predict every chip of `split` not yet in `out`; returns the chip ids this process wrote."""
    if tta not in TTA:
        raise ValueError(f"--tta must be one of {', '.join(TTA)}, not {tta!r}")
    if not checkpoints:
        raise ValueError("give at least one --checkpoint")
    for ckpt in checkpoints:
        if not Path(ckpt).is_file():
            raise FileNotFoundError(f"checkpoint {ckpt} does not exist")
    data, out = Path(data), Path(out)
    runtime = init_runtime()
    source = open_source(data, split)
    chips = source.chip_ids()[runtime.rank :: runtime.world]
    todo = [
        c for c in chips if overwrite or not is_predicted(prediction_path(out, c), source.size(c))
    ]
    with contextlib.ExitStack() as outputs:  # writable before the models run
        outputs.enter_context(output_folder(out))
        if archive:
            outputs.enter_context(output_folder(Path(archive).parent))
        if runtime.main:
            remove_stale_temporaries(out)
            if len(todo) < len(chips):
                tqdm.write(f"skipped {len(chips) - len(todo)} chip(s) already predicted in {out}")
        models = load_for_inference(checkpoints, runtime.device)
        conventions = shared_conventions(models)
        amp_dtype = autocast_dtype(amp, runtime.device)
        dataset = ChipDataset(data, split, todo, targets=False, raw=True)
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=workers,
            pin_memory=runtime.device.type == "cuda",
        )
        with tqdm(total=len(todo), desc="predict", unit="chip", disable=not runtime.main) as bar:
            for batch in loader:
                image, present = model_input(batch, runtime.device, conventions)
                agbm = predict_batch(models, image, present, tta, amp_dtype).cpu().numpy()
                for chip_id, chip_agbm in zip(batch["chip_id"], agbm, strict=True):
                    geo = dataset.source.georeference(chip_id)  # the input's CRS, raw or cached
                    write_prediction(prediction_path(out, chip_id), chip_agbm[0], geo)
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


def _run(args: argparse.Namespace) -> int:
    written = predict(
        args.data,
        args.checkpoint,
        args.out,
        args.split,
        args.tta,
        args.batch_size,
        args.amp,
        args.workers,
        args.overwrite,
        args.archive,
    )
    rank = f"process {dist.get_rank()}: " if dist.is_initialized() else ""
    print(f"{rank}wrote {len(written)} prediction(s) to {args.out}")
    return 0


def add_inference_options(parser: argparse.ArgumentParser, unit: str) -> None:
    """The model options `agbm predict` and `agbm predict-scene` share."""
    parser.add_argument(
        "--checkpoint",
        required=True,
        nargs="+",
        type=Path,
        help="checkpoint(s); several are averaged",
    )
    parser.add_argument(
        "--tta", default="flips", choices=list(TTA), help="test-time augmentation (default flips)"
    )
    parser.add_argument("--batch-size", type=int, default=8, help=f"{unit} per batch (default 8)")
    add_amp_option(parser)


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """`agbm predict`."""
    parser = subparsers.add_parser(
        "predict",
        help="predict AGBM maps (submission GeoTIFFs) for a split",
        description=(
            "Write one float32 {chip}_agbm.tif per chip, with test-time augmentation and an "
            "ensemble of checkpoints. Chips already written are skipped unless --overwrite. "
            "Run under `torchrun --nproc_per_node=N -m agbm predict ...` to shard across GPUs."
        ),
    )
    parser.add_argument("--data", required=True, type=Path, help="data root or cache")
    parser.add_argument("--split", default="test", choices=SPLITS, help="split (default test)")
    parser.add_argument("--out", required=True, type=Path, help="prediction directory")
    add_inference_options(parser, "chips")
    parser.add_argument("--workers", type=int, default=2, help="loader workers (default 2)")
    parser.add_argument("--overwrite", action="store_true", help="redo chips already written")
    parser.add_argument("--archive", type=Path, help="also pack the predictions into this .tar.gz")
    parser.set_defaults(func=_run)
