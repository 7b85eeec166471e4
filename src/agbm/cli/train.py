"""`agbm train`: every `TrainConfig` setting made with `setting` is a flag, over a YAML file.

The flags are generated from the dataclass (name, type, default, help and choices), so a new
setting is one field in `agbm.training.config`, never a second list here.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any, Literal

from agbm.training.config import RUN_OPTIONS, TrainConfig, read_config_file


def flag_fields() -> list[dataclasses.Field]:
    """The `TrainConfig` fields that are flags (those with a help text)."""
    return [f for f in dataclasses.fields(TrainConfig) if f.metadata.get("help")]


def _flag_type(field: dataclasses.Field) -> tuple[type, tuple[str, ...] | None]:
    """The flag's value type and its words, from the field's annotation: `int | None` ->
    int, `bool | str` (a setting that takes a word or a YAML boolean) -> str, a `Literal`
    (or `Literal | None`) -> str with its words as the choices."""
    hint = typing.get_type_hints(TrainConfig)[field.name]
    kinds = [k for k in typing.get_args(hint) or (hint,) if k is not type(None)]
    if typing.get_origin(hint) is Literal:
        kinds = [hint]
    words = next((typing.get_args(k) for k in kinds if typing.get_origin(k) is Literal), None)
    if words is not None:
        return str, words
    return (str if str in kinds else kinds[0]), None


def add_flag(parser: argparse.ArgumentParser, field: dataclasses.Field) -> None:
    """One flag for one setting. Every flag defaults to None, meaning "not given", so that
    a YAML file's value stands unless the command line overrides it."""
    name, text = f"--{field.name.replace('_', '-')}", field.metadata["help"]
    kind, choices = _flag_type(field)
    if kind is bool:
        action = argparse.BooleanOptionalAction if field.default else "store_true"
        suffix = " (default on)" if field.default else ""
        parser.add_argument(name, action=action, default=None, help=text + suffix)
        return
    shown = "" if field.default in (None, "") else f" (default {field.default})"
    parser.add_argument(name, type=kind, default=None, choices=choices, help=text + shown)


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, dict[str, bool]]:
    """Defaults, then the `--config` YAML file, then the flags given on the command line:
    the run's settings, and its run options (`RUN_OPTIONS`: the file's, or the flags')."""
    values: dict[str, Any] = {}
    options = dict.fromkeys(RUN_OPTIONS, False)
    if args.config:
        values, given = read_config_file(args.config)
        options.update(given)
    for field in flag_fields():
        value = getattr(args, field.name)
        if value is not None:
            values[field.name] = value
    options.update({k: True for k in RUN_OPTIONS if getattr(args, k)})
    if options["no_augment"]:
        from agbm.training.augment import Augment

        values["augment"] = dict(Augment.OFF)
    return TrainConfig(**values), options


def _run(args: argparse.Namespace) -> int:
    from agbm.training.trainer import train

    config, options = config_from_args(args)
    train(config, resume=options["resume"], overwrite=options["overwrite"])
    return 0


#: `agbm train --help`'s description.
DESCRIPTION = (
    "Train the temporal UNet with the BioMassters-winning recipe. Run under "
    "`torchrun --nproc_per_node=N -m agbm train ...` for several GPUs or nodes. "
    "Writes metrics.csv, last.pt and best.pt to --out."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm train`."""
    parser.add_argument(
        "--config",
        type=Path,
        help="YAML file of settings, keys as the flags with _ for - (flags override it); "
        "values are converted to each setting's type, or refused naming the key",
    )
    for field in flag_fields():
        add_flag(parser, field)
    parser.add_argument("--no-augment", action="store_true", help="switch augmentation off")
    parser.add_argument(
        "--resume", action="store_true", help="continue from RUN_DIR/last.pt if it exists"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start again in a RUN_DIR that holds a run, deleting that run's files",
    )
    parser.set_defaults(func=_run)
