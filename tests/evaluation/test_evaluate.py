"""`agbm evaluate` against hand-computed metrics, and its errors."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from agbm.cli import main
from agbm.data import list_chips, read_target, target_path
from agbm.data.cache import prepare
from agbm.errors import DataError
from agbm.evaluation import evaluate
from agbm.inference import write_prediction
from tests.helpers import write_tif


@pytest.fixture
def truth(tmp_path: Path) -> Path:
    """Two 2x2 targets: chip a = [[0, 10], [20, 30]], chip b = all 100."""
    write_tif(target_path(tmp_path, "aaaa0000", "test"), np.array([[[0, 10], [20, 30]]], "f4"))
    write_tif(target_path(tmp_path, "bbbb0000", "test"), np.full((1, 2, 2), 100, "f4"))
    return tmp_path


def test_metric_matches_hand_computation(truth: Path, tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    pred.mkdir()
    write_prediction(pred / "aaaa0000_agbm.tif", np.array([[0, 10], [20, 34]], "f4"), {})
    write_prediction(pred / "bbbb0000_agbm.tif", np.full((2, 2), 97, "f4"), {})
    result = evaluate(pred, truth, "test")
    # chip a: one error of 4 over 4 pixels -> sqrt(16 / 4) = 2; chip b: 3 everywhere -> 3
    np.testing.assert_allclose(result.per_chip, [2.0, 3.0])
    assert result.average == pytest.approx(2.5)
    assert result.pooled == pytest.approx(math.sqrt((16 + 4 * 9) / 8))


def test_missing_prediction_is_an_error_naming_the_chip(truth: Path, tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    pred.mkdir()
    write_prediction(pred / "aaaa0000_agbm.tif", np.zeros((2, 2), "f4"), {})
    with pytest.raises(DataError, match="bbbb0000.*missing"):
        evaluate(pred, truth, "test")


@pytest.mark.parametrize(
    ("write", "fault"),
    [
        (lambda p: write_prediction(p, np.zeros((3, 3), "f4"), {}), "size"),
        (lambda p: p.write_bytes(b"garbage"), "unreadable"),
        (lambda p: write_prediction(p, np.array([[1, np.nan], [3, 4]], "f4"), {}), "NaN"),
        (lambda p: write_tif(p, np.zeros((2, 2, 2), "f4")), "2 band"),
    ],
)
def test_malformed_prediction_is_an_error_naming_the_chip(
    truth: Path, tmp_path: Path, write, fault: str
) -> None:
    pred = tmp_path / "pred"
    pred.mkdir()
    write_prediction(pred / "aaaa0000_agbm.tif", np.zeros((2, 2), "f4"), {})
    write(pred / "bbbb0000_agbm.tif")
    with pytest.raises(DataError, match=f"bbbb0000: malformed.*{fault}"):
        evaluate(pred, truth, "test")


def test_cli_prints_table_and_writes_per_chip_csv(truth: Path, tmp_path: Path, capsys) -> None:
    pred = tmp_path / "pred"
    pred.mkdir()
    for chip in ("aaaa0000", "bbbb0000"):
        write_prediction(pred / f"{chip}_agbm.tif", np.full((2, 2), 100, "f4"), {})
    csv_path = tmp_path / "per_chip.csv"
    args = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--per-chip", str(csv_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert re.search(r"^chips\s+2$", out, re.MULTILINE)
    # chip a: errors 100, 90, 80, 70 -> sqrt(mean of squares) = 85.732; chip b: 0
    assert re.search(r"^average RMSE.*\s42\.866$", out, re.MULTILINE), out
    assert csv_path.read_text().splitlines()[1].startswith("aaaa0000,")
    assert main(["evaluate", "--pred", str(tmp_path / "none"), "--truth", str(truth)]) == 2


def test_dotfiles_beside_the_targets_are_not_chips(truth: Path, tmp_path: Path) -> None:
    """A macOS `._*` copy in test_agbm/ used to be scored as a chip and fail."""
    (truth / "test_agbm" / "._aaaa0000_agbm.tif").write_bytes(b"\x00\x05\x16\x07")
    (truth / "test_agbm" / ".DS_Store").write_bytes(b"Bud1")
    pred = tmp_path / "pred"
    pred.mkdir()
    write_prediction(pred / "aaaa0000_agbm.tif", np.array([[0, 10], [20, 34]], "f4"), {})
    write_prediction(pred / "bbbb0000_agbm.tif", np.full((2, 2), 97, "f4"), {})
    assert evaluate(pred, truth, "test").chip_ids == ["aaaa0000", "bbbb0000"]


@pytest.fixture
def synth_test(synth_root: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the synthetic set's test split and a prediction folder of the targets."""
    root = Path(shutil.copytree(synth_root, tmp_path / "data"))
    pred = tmp_path / "pred"
    pred.mkdir()
    for chip in list_chips(root, "test"):
        write_prediction(pred / f"{chip}_agbm.tif", read_target(root, chip, "test"), {})
    return root, pred


def test_a_missing_target_is_named_unless_a_partial_score_is_asked_for(
    synth_test: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """With one target missing, evaluate used to score the others without a word."""
    root, pred = synth_test
    first, second = list_chips(root, "test")
    target_path(root, first, "test").unlink()
    args = ["evaluate", "--pred", str(pred), "--truth", str(root)]
    assert main(args) == 2
    assert f"1 of 2 test chip(s) have no target in {root / 'test_agbm'} (first: {first})" in (
        capsys.readouterr().err
    )
    assert evaluate(pred, root, "test", partial=True).chip_ids == [second]


def test_a_target_of_the_wrong_size_is_blamed_not_the_prediction(
    synth_test: tuple[Path, Path],
) -> None:
    root, pred = synth_test
    chip = list_chips(root, "test")[0]
    write_tif(target_path(root, chip, "test"), np.zeros((1, 16, 16), "f4"))
    with pytest.raises(DataError, match=rf"{chip}_agbm.tif: target size \(16, 16\) differs"):
        evaluate(pred, root, "test")


def test_a_prepared_cache_serves_as_the_truth(synth_test: tuple[Path, Path]) -> None:
    root, pred = synth_test
    cache = root.parent / "cache"
    prepare(root, cache, "test")
    result = evaluate(pred, cache, "test")
    assert result.chip_ids == list_chips(root, "test") and result.average == 0


def test_a_per_chip_file_that_cannot_be_written_fails_before_scoring(
    trained, tmp_path: Path, capsys
) -> None:
    """`--per-chip DIR` gave a traceback after the scoring; a missing folder named a
    temporary file."""
    data, _ = trained
    args = ["evaluate", "--pred", str(tmp_path), "--truth", str(data)]
    assert main([*args, "--per-chip", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main([*args, "--per-chip", str(blocker / "sub" / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert "cannot write there" in err and ".tmp" not in err
