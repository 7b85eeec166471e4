"""Options shared by several commands, defined once. Torch-free, as every command's module
at import: `--help` loads no torch."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from agbm.choices import AMP_NAMES, TTA_NAMES
from agbm.compose.catalog import EARTH_SEARCH, PLANETARY_COMPUTER
from agbm.inference.tiling import WINDOW_MULTIPLE

if TYPE_CHECKING:
    from agbm.inference.options import InferenceOptions


def add_amp_option(parser: argparse.ArgumentParser) -> None:
    """`--amp` as every model-running command and benchmark takes it."""
    parser.add_argument(
        "--amp",
        default="auto",
        choices=["auto", *AMP_NAMES],
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
        "--tta",
        default="flips",
        choices=list(TTA_NAMES),
        help="test-time augmentation (default flips)",
    )
    parser.add_argument("--batch-size", type=int, default=8, help=f"{unit} per batch (default 8)")
    add_amp_option(parser)


#: `--calibration`'s help for the commands that map.
MAP_CALIBRATION = (
    "CALIB.json (agbm calibrate) of these checkpoints and TTA: also write the bounds, and "
    "with TTA or an ensemble the members' spread (not a calibrated interval)"
)


def add_zones_id_option(parser: argparse.ArgumentParser) -> None:
    """`--id`: the zones' id field (the library's `id_field`)."""
    parser.add_argument(
        "--id",
        dest="id_field",
        metavar="ID",
        help="the zones' id field (default: their row number)",
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


def add_bbox_option(where: argparse._ActionsContainer, help: str) -> None:
    """`--bbox W S E N`, a lon/lat box (`agbm.compose.grid.check_bbox`), in `where` (the
    parser, or a group of options that exclude each other); `help` says what the command
    does with it."""
    where.add_argument("--bbox", nargs=4, type=float, metavar=("W", "S", "E", "N"), help=help)


def add_area_options(
    parser: argparse.ArgumentParser, required: bool, region_help: str, bbox_help: str
) -> None:
    """`--region FILE` or `--bbox`: an area as a vector file's polygons or a lon/lat box,
    one of them (`required`, or neither); the helps say what the command does with it."""
    where = parser.add_mutually_exclusive_group(required=required)
    where.add_argument("--region", type=Path, help=region_help)
    add_bbox_option(where, bbox_help)


#: The months of `--year`, as the challenge counts them.
YEAR_MONTHS = "September YEAR-1 .. August YEAR"


def add_year_option(
    parser: argparse.ArgumentParser,
    required: bool = True,
    help: str = f"the 12 months {YEAR_MONTHS}, as in the challenge",
    nargs: str | None = None,
) -> None:
    """`--year`: the year whose months a command composes (or, per `help`, keeps; with
    `nargs`, the years)."""
    parser.add_argument("--year", type=int, required=required, help=help, nargs=nargs)


def add_catalog_options(parser: argparse.ArgumentParser) -> None:
    """`--catalog` and `--s2-catalog`: the STAC catalogs a command composes from."""
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


def add_place_options(parser: argparse.ArgumentParser) -> None:
    """Where and when: the options `agbm compose` and `agbm map` share."""
    where = parser.add_mutually_exclusive_group(required=True)
    add_bbox_option(where, "area in degrees (WGS 84 lon/lat); the grid is 10 m in its UTM zone")
    where.add_argument("--like", type=Path, help="use this GeoTIFF's grid (CRS, transform, size)")
    add_year_option(parser)
    add_catalog_options(parser)


def add_window_options(parser: argparse.ArgumentParser) -> None:
    """`--window` and `--overlap`: the windows a scene or a region is predicted in."""
    parser.add_argument(
        "--window",
        type=int,
        default=256,
        help=f"window side in pixels, a multiple of {WINDOW_MULTIPLE} (default 256)",
    )
    parser.add_argument(
        "--overlap",
        type=int,
        default=64,
        help="minimum overlap of neighbouring windows, blended with the taper (default 64)",
    )


def add_cluster_options(parser: argparse.ArgumentParser, unit: str, local: str) -> None:
    """`--scheduler` and `--retries`: the Dask cluster a command runs its tasks on, and how
    often a failed `unit` (tile, chip) is tried again; `local` says what cluster of this
    machine it runs when given none."""
    parser.add_argument(
        "--scheduler",
        help=f"a running Dask scheduler's address (tcp://HOST:PORT) or file (default: {local})",
    )
    parser.add_argument(
        "--retries", type=int, default=2, help=f"retries of a failed {unit} (default 2)"
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
