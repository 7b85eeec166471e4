"""`agbm map`: from a place and a year to a biomass map (compose, then predict-scene)."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.cli.options import (
    add_calibration_options,
    add_inference_options,
    add_place_options,
    inference_options,
)


def _run(args: argparse.Namespace) -> int:
    from agbm.mapping import map_place

    done = map_place(
        args.out,
        args.year,
        options=inference_options(args),
        bbox=args.bbox,
        like=args.like,
        catalog=args.catalog,
        s2_catalog=args.s2_catalog,
        inputs=args.inputs,
        overwrite=args.overwrite,
        progress=True,
    )
    scene = done.map
    print(
        f"wrote {scene.path} ({scene.height} x {scene.width} pixels) and {done.quicklook}; "
        f"inputs in {done.inputs}"
    )
    return 0


#: `agbm map --help`'s description.
DESCRIPTION = (
    "Compose the year's monthly Sentinel-1 and Sentinel-2 stacks of a place from a "
    "STAC catalog (as `agbm compose`), predict its AGBM map (as `agbm predict-scene`) "
    "and draw a PNG quick-look beside it (true colour and biomass). An interrupted "
    "run resumes: the months composed are kept in --inputs."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm map`."""
    add_place_options(parser)
    parser.add_argument("--out", required=True, type=Path, help="the AGBM map (.tif)")
    parser.add_argument(
        "--inputs",
        type=Path,
        help="folder for the composed inputs (default: OUT's name + _inputs, beside it)",
    )
    add_inference_options(parser, "windows")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the map --out if it exists already"
    )
    add_calibration_options(parser)
    parser.set_defaults(func=_run)
