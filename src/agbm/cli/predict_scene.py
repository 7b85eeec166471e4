"""`agbm predict-scene`: one AGBM map of a whole scene of your own imagery."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.cli.options import (
    add_calibration_options,
    add_inference_options,
    add_window_options,
    inference_options,
)


def _run(args: argparse.Namespace) -> int:
    from agbm.inference.scene import predict_files

    options = inference_options(args)
    done = predict_files(
        args.s1, args.s2, args.out, options=options, overwrite=args.overwrite, progress=True
    )
    print(f"wrote {done.path} ({done.height} x {done.width} pixels, {done.windows} windows)")
    return 0


#: `agbm predict-scene --help`'s description.
DESCRIPTION = (
    "Predict an AGBM map (float32 t/ha GeoTIFF, tiled and compressed, on the input "
    "grid) of a scene of any size from its 12 monthly Sentinel-1 and Sentinel-2 "
    "images, in overlapping windows blended with a smooth taper (no seams). Months run "
    "00 = September ... 11 = August; units and no-data values are those of the "
    "BioMassters chips. Memory holds a batch of windows and a strip of the scene one "
    "window tall, whatever its height. Runs on the GPU when there is one."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm predict-scene`."""
    parser.add_argument(
        "--s1",
        required=True,
        help=(
            "Sentinel-1: a 48-band stack, month-major (12 months x VV_asc, VH_asc, VV_desc, "
            "VH_desc; dB, -9999 = no data), or a per-month pattern with {MM} (e.g. "
            "'scene/S1_{MM}.tif', 4 bands each; a missing file is a missing month)"
        ),
    )
    parser.add_argument(
        "--s2",
        required=True,
        help=(
            "Sentinel-2: a 132-band stack, month-major (12 months x B2, B3, B4, B5, B6, B7, B8, "
            "B8A, B11, B12, CLP; reflectance x 10000, cloud probability 0..100, CLP 255 or "
            "all bands 0 = no data), or a per-month pattern with {MM} (11 bands each); on the "
            "same grid as --s1"
        ),
    )
    parser.add_argument("--out", required=True, type=Path, help="output GeoTIFF")
    add_window_options(parser)
    add_inference_options(parser, "windows")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the map --out if it exists already"
    )
    add_calibration_options(parser)
    parser.set_defaults(func=_run)
