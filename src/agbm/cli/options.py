"""Options shared by several commands."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from agbm.compose.catalog import EARTH_SEARCH, PLANETARY_COMPUTER
from agbm.inference.tta import TTA
from agbm.runtime import AMP_DTYPES

if TYPE_CHECKING:
    from agbm.inference.options import InferenceOptions


def add_amp_option(parser: argparse.ArgumentParser) -> None:
    """`--amp` as every model-running command and benchmark takes it."""
    parser.add_argument(
        "--amp",
        default="auto",
        choices=["auto", *AMP_DTYPES],
        help="mixed precision (default auto: bf16 on GPU, and for inference on CPUs with "
        "native bf16, AVX512-BF16 or AMX; off elsewhere)",
    )


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


#: `--calibration`'s help for the commands that map.
MAP_CALIBRATION = (
    "CALIB.json (agbm calibrate) of these checkpoints and TTA: also write the bounds, and "
    "with TTA or an ensemble the members' spread (not a calibrated interval)"
)


def add_calibration_options(
    parser: argparse.ArgumentParser, calibration_help: str = MAP_CALIBRATION
) -> None:
    """`--calibration` and `--coverage`: calibrated bounds beside a map (`agbm calibrate`),
    or what `calibration_help` says the command does with them."""
    parser.add_argument("--calibration", type=Path, help=calibration_help)
    parser.add_argument(
        "--coverage", type=float, default=0.9, help="the bounds' coverage (default 0.9)"
    )


def add_place_options(parser: argparse.ArgumentParser) -> None:
    """Where and when: the options `agbm compose` and `agbm map` share."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--bbox",
        nargs=4,
        type=float,
        metavar=("W", "S", "E", "N"),
        help="area in degrees (WGS 84 lon/lat); the grid is 10 m in its UTM zone",
    )
    where.add_argument("--like", type=Path, help="use this GeoTIFF's grid (CRS, transform, size)")
    parser.add_argument(
        "--year",
        type=int,
        required=True,
        help="the 12 months September YEAR-1 .. August YEAR, as in the challenge",
    )
    parser.add_argument(
        "--catalog",
        default=PLANETARY_COMPUTER,
        help="STAC API URL, or a static catalog's catalog.json (path or file:// URL) "
        "(default: the Planetary Computer)",
    )
    parser.add_argument(
        "--s2-catalog",
        help=f"another catalog for Sentinel-2 only, e.g. Earth Search: {EARTH_SEARCH}",
    )


def inference_options(args: argparse.Namespace) -> InferenceOptions:
    """The one `InferenceOptions` of a model-running command, from its parsed `args`:
    `--checkpoint` and whichever of the options' other fields the command has as flags
    (`--tta`, `--batch-size`, `--amp`, `--window`, `--overlap`, `--calibration`,
    `--coverage`); the others keep the options' defaults. Imported here, when a command
    runs, so that `--help` loads no model code."""
    from agbm.inference.options import InferenceOptions

    names = [f.name for f in fields(InferenceOptions) if f.name != "checkpoints"]
    given = {name: getattr(args, name) for name in names if hasattr(args, name)}
    return InferenceOptions(tuple(args.checkpoint), **given)
