"""`agbm chips`: training chips where the labels are, composed from a STAC catalog."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.cli.options import add_catalog_options, add_cluster_options, add_year_option


def _run(args: argparse.Namespace) -> int:
    from agbm.region.chips import describe, make_chips

    result = make_chips(
        args.labels, args.year, args.out, catalog=args.catalog, s2_catalog=args.s2_catalog,
        crs=args.crs, scheduler=args.scheduler, retries=args.retries, progress=True,
    )  # fmt: skip
    print(describe(result))
    return 1 if result.failed else 0


#: `agbm chips --help`'s description.
DESCRIPTION = (
    "Make 256 x 256 training chips where the labels are (agbm labels' file): the labels' "
    "10 m grid is cut into chips, each chip holding a label is composed from the STAC "
    "catalog for the year (on a Dask cluster, as agbm map-region composes), and written in "
    "the BioMassters layout (OUT/train_features/) with its labels on its grid "
    "(OUT/train_labels/{chip}_labels.csv), so that agbm train --data OUT learns from them. "
    "Resumable. Needs pip install 'agbm[region,labels]'."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm chips`."""
    parser.add_argument("--labels", type=Path, required=True, help="labels file (agbm labels)")
    add_year_option(parser)
    parser.add_argument("--out", type=Path, required=True, help="chips folder (a data root)")
    add_catalog_options(parser)
    parser.add_argument("--crs", help="the chips' CRS (default: the labels' centre's UTM zone)")
    add_cluster_options(parser, "chip", "a cluster of this machine")
    parser.set_defaults(func=_run)
