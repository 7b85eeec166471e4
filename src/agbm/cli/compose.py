"""`agbm compose`: a place's monthly Sentinel-1 and Sentinel-2 stacks from a STAC catalog."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.cli.options import add_place_options
from agbm.compose import compose


def _run(args: argparse.Namespace) -> int:
    done = compose(
        args.out, args.year, args.bbox, args.like, args.catalog, args.s2_catalog, progress=True
    )
    height, width = done.shape
    print(f"wrote {done.s1}, {done.s2} and {done.sidecar} ({height} x {width} pixels)")
    return 0


#: `agbm compose --help`'s description.
DESCRIPTION = (
    "Write S1.tif (48 bands: 12 months x VV, VH ascending, VV, VH descending, dB, "
    "-9999 = none), S2.tif (132 bands: 12 months x B2..B12 reflectance x 10000 and "
    "cloud probability, 255 = no data) and compose.json (items, dates, cloud "
    "fractions) on one 10 m grid: the inputs of `agbm predict-scene`. Resumable: "
    "months already composed are kept. Needs the compose extra: "
    "pip install 'agbm[compose]'. docs/compose.md lists how the result differs from "
    "the challenge's inputs."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm compose`."""
    add_place_options(parser)
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.set_defaults(func=_run)
