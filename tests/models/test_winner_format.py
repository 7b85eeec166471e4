"""The winner's checkpoint formats read safely, without the fixture: hostile pickles run
nothing and get one line, foreign files are named, and winner names map to agbm's."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from agbm.cli import main
from agbm.data import AGBM_CONVENTIONS
from agbm.errors import CheckpointError, UnsafePickleError
from agbm.models import TemporalUNet, load_model
from agbm.models.winner.convert import describe_import, import_winner
from agbm.models.winner.translate import agbm_key, timm_name


def test_checkpoints_without_conventions_load_with_agbm_conventions(tmp_path: Path) -> None:
    """Checkpoints written before conventions were recorded were trained on agbm's inputs."""
    model = TemporalUNet("resnet18", decoder_channels=(16, 16, 16, 16, 16))
    config = {k: v for k, v in model.config.items() if k != "input_conventions"}
    torch.save({"model_config": config, "model": model.state_dict()}, tmp_path / "old.pt")
    assert load_model(tmp_path / "old.pt").conventions == AGBM_CONVENTIONS


class Hostile:
    """An object whose unpickling calls `call(*args)` (as any pickle may run code)."""

    def __init__(self, call: object, *args: object) -> None:
        self.call, self.args = call, args

    def __reduce__(self) -> tuple:
        return self.call, self.args


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_a_hostile_pickle_gets_one_line_and_runs_nothing(
    writer: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    src = tmp_path / "model_best.pth"
    payload = {"state_dict": Hostile(os.system, f"touch {marker}")}
    if writer == "torch.save":
        torch.save(payload, src)
    else:
        src.write_bytes(pickle.dumps(payload, protocol=2))
    assert main(["import-winner", str(src), "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(src) in err and "refused" in err
    assert "system" in err
    assert not marker.exists() and not (tmp_path / "x.pt").exists()
    with pytest.raises(UnsafePickleError, match="system"):  # its own class, not a ValueError
        import_winner(src, tmp_path / "x.pt")


def test_calls_to_model_library_functions_are_kept_as_data_never_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name from a package a saved model is made of (here torch.save) is not refused but
    kept inert: the call it stands for does not happen."""
    marker = tmp_path / "written"
    src = tmp_path / "modelo_best.pth"
    torch.save(Hostile(torch.save, {"x": 1}, str(marker)), src)
    assert main(["import-winner", str(src), "--out", str(tmp_path / "x.pt")]) == 2
    assert "not a winner checkpoint" in capsys.readouterr().err
    assert not marker.exists()


def test_names_map_to_agbm_and_timm_1() -> None:
    assert agbm_key("encoder.model.conv_stem.weight") == "encoder.conv_stem.weight"
    assert agbm_key("attn.4.attn.3.bias") == "temporal.4.score.3.bias"
    assert agbm_key("segmentation_head.bias") == "head.bias"
    assert agbm_key("decoder.blocks.0.conv1.0.weight") == "decoder.blocks.0.conv1.0.weight"
    assert timm_name("tf_efficientnetv2_l_in21k") == "tf_efficientnetv2_l.in21k"
    assert timm_name("resnet18") == "resnet18"
    with pytest.raises(CheckpointError, match="not a timm model"):
        timm_name("efficientnet_b99")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"state_dict": {"encoder.model.conv_stem.weight": 1}}, "entries that are not tensors"),
        ([1, 2], "not a winner checkpoint"),
        ({"state_dict": {}}, "names no backbone"),
        (b"", "not a readable torch checkpoint"),
    ],
    ids=["non-tensor", "list", "no-backbone", "empty"],
)
def test_files_that_are_not_winner_checkpoints_get_one_line(
    content: object, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "model_best.pth"
    if isinstance(content, bytes):
        src.write_bytes(content)
    else:
        torch.save(content, src)
    assert main(["import-winner", str(src), "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and str(src) in err


def test_import_winner_names_a_directory_and_refuses_to_overwrite_its_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder given as the source was reported as 'does not exist', and `--out SRC`
    replaced the winner's file with the converted one."""
    assert main(["import-winner", str(tmp_path), "--out", str(tmp_path / "x.pt")]) == 2
    assert "is a directory, not a checkpoint file" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="nope.pth does not exist"):  # was FileNotFoundError
        import_winner(tmp_path / "nope.pth", tmp_path / "x.pt")
    src = tmp_path / "model_best.pth"
    torch.save({"state_dict": {}}, src)
    before = src.read_bytes()
    assert main(["import-winner", str(src), "--out", str(src)]) == 2
    assert "is one of this command's inputs" in capsys.readouterr().err
    assert src.read_bytes() == before
    assert main(["import-winner", str(src), "--out", str(tmp_path)]) == 2
    assert "is a directory: give the name of the file" in capsys.readouterr().err


def test_the_import_summary_is_read_from_the_written_model() -> None:
    """The summary's model lines came from hard-coded text; now from `model_config`."""
    model = TemporalUNet("resnet18", decoder_channels=(16, 16, 16, 16, 16), temporal="attention")
    report = {"kind": "training checkpoint", "model_config": model.config, "parameters": 2e6}
    text = describe_import({**report, "dropped": 0}, "a.pth", "b.pt")
    assert "resnet18" in text and "self-attention, then pooling over 12 months" in text
    assert "agbm: inputs clipped to [0, 1], cloud 255 as no data, absent months masked" in text
    assert "output scaled by 100" in text
