"""`InferenceOptions`: one frozen object is the way into every inference entry point; it
checks its values when made, and it alone builds the layers and the record of an output."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

from agbm.errors import CheckpointError, DataError
from agbm.evaluation.calibration import calibrate
from agbm.inference.chips import predict
from agbm.inference.layers import CHECKPOINTS_TAG, SPREAD_BAND, TTA_TAG
from agbm.inference.options import InferenceOptions
from agbm.inference.scene import predict_files
from agbm.io import file_sha256
from agbm.mapping import map_place
from agbm.region.engine import map_region
from tests.helpers import write_calibration

#: The entry points that take the options, and nothing else of them.
ENTRY_POINTS = [predict, predict_files, map_place, calibrate, map_region]


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda f: f.__name__)
def test_every_entry_point_takes_the_options_keyword_only_and_none_of_their_fields(
    entry: object,
) -> None:
    parameters = inspect.signature(entry).parameters
    assert parameters["options"].kind is inspect.Parameter.KEYWORD_ONLY
    assert parameters["options"].annotation == "InferenceOptions"
    fields = {f.name for f in dataclasses.fields(InferenceOptions)}
    assert not fields & set(parameters)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"checkpoints": ()}, "give at least one checkpoint in `checkpoints`"),
        ({"tta": "flip"}, "`tta` must be one of none, hv, flips, d4, not 'flip'"),
        ({"batch_size": 0}, "`batch_size` must be at least 1, not 0"),
        ({"calibration": "c.json", "coverage": 1.5}, "`coverage` must be between 0 and 1"),
    ],
)
def test_a_bad_value_is_refused_when_the_options_are_made(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InferenceOptions(**{"checkpoints": ("m.pt",), **settings})


def test_the_options_are_frozen_hashable_and_made_of_paths(tmp_path: Path) -> None:
    options = InferenceOptions("m.pt", calibration="c.json", coverage=1.5 - 0.6)
    assert options.checkpoints == (Path("m.pt"),) and options.calibration == Path("c.json")
    assert InferenceOptions(["m.pt"], coverage=7) == InferenceOptions((Path("m.pt"),), coverage=7)
    assert len({options, dataclasses.replace(options)}) == 1  # a region's worker caches them
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.tta = "none"  # type: ignore[misc]
    absolute = options.absolute()
    assert absolute.checkpoints[0].is_absolute() and absolute.calibration.is_absolute()


def test_one_record_of_the_model_serves_the_folders_the_tags_and_the_calibration(
    tmp_path: Path,
) -> None:
    checkpoint = tmp_path / "m.pt"
    checkpoint.write_bytes(b"weights")  # hashed, never loaded
    sha = file_sha256(checkpoint)
    options = InferenceOptions((checkpoint,), "hv", window=128, overlap=32)
    assert options.model_record() == {"checkpoints": [sha], "tta": "hv"}
    assert options.record() == options.model_record()  # chips: no windows
    assert options.record(windows=True) == {**options.model_record(), "window": 128, "overlap": 32}
    layers = options.layers()
    assert layers.tags == {CHECKPOINTS_TAG: sha, TTA_TAG: "hv"} and layers.bounds is None
    calib = write_calibration(checkpoint, "hv", [10.0] * 7, tmp_path / "calib.json")
    bounded = dataclasses.replace(options, calibration=calib, coverage=0.8)
    assert bounded.record() == {"checkpoints": [sha], "tta": "hv",
                                "calibration": file_sha256(calib), "coverage": 0.8}  # fmt: skip
    layers = bounded.layers()
    assert layers.bounds is not None and layers.spread  # two TTA passes: their spread
    assert layers.bands()[-1] == SPREAD_BAND and "AGBM_BOUNDS" in layers.tags
    with pytest.raises(DataError, match="calibrated for checkpoints"):
        dataclasses.replace(bounded, tta="flips").layers()
    with pytest.raises(CheckpointError, match="nope.pt does not exist"):
        InferenceOptions((tmp_path / "nope.pt",)).record()


#: The rooms the options go through, from the CLI to the writers.
ROOMS = [
    "agbm.inference.chips", "agbm.inference.intervals", "agbm.inference.layers",
    "agbm.inference.options", "agbm.inference.scene", "agbm.inference.tiling",
    "agbm.inference.tta", "agbm.mapping", "agbm.evaluation.calibration", "agbm.region.chips",
    "agbm.region.cluster", "agbm.region.engine", "agbm.region.report", "agbm.region.tasks",
]  # fmt: skip


def _public_functions(module: object) -> list[tuple[str, object]]:
    """(name, function) of the module's own public functions and its classes' methods."""
    found = []
    for name, value in vars(module).items():
        if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(value):
            found.append((name, value))
        elif inspect.isclass(value):
            found += [
                (f"{name}.{method}", function)
                for method, function in vars(value).items()
                if inspect.isfunction(function) and not method.startswith("_")
            ]
    return found


def test_a_public_function_of_four_or_more_parameters_takes_its_options_keyword_only() -> None:
    """As odc-stac's and exactextract's entry points do: no call passes 8 positional
    arguments, whose order siblings spelled differently."""
    offenders = []
    for name in ROOMS:
        for function_name, function in _public_functions(importlib.import_module(name)):
            parameters = [
                p for p in inspect.signature(function).parameters.values() if p.name != "self"
            ]
            positional = [p for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
            if len(parameters) >= 4 and any(p.default is not p.empty for p in positional):
                offenders.append(f"{name}.{function_name}")
    assert offenders == []
