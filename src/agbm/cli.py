"""The `agbm` command line: one subcommand per job, each defined beside the code it runs.

Every command module exposes ``add_command(subparsers)``, which adds its parser and sets
``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).
Keeping the options next to the function they feed means a new command touches one line
here, not a growing central file.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from agbm import __version__

#: Modules that contribute subcommands, in the order `agbm --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "agbm.synth",
    "agbm.data",
    "agbm.train",
    "agbm.predict",
    "agbm.evaluate",
    "agbm.plots",
    "agbm.demo",
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="agbm",
        description="Forest above-ground biomass (t/ha) from Sentinel-1 + Sentinel-2 time series.",
    )
    parser.add_argument("--version", action="version", version=f"agbm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_command(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `agbm` console script; returns the process exit code.

    Expected failures (bad data, bad options) print one clear line instead of a traceback.
    """
    from agbm.data import DataError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (DataError, ValueError, FileNotFoundError) as exc:
        print(f"agbm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        _leave_process_group()


def _leave_process_group() -> None:
    """Under torchrun, train and predict join a process group; the process owns its exit."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
