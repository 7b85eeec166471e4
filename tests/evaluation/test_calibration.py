"""Calibrated intervals cover what they promise: a tiny model trained on one synthetic set,
calibrated on a second, and scored on a third (docs/uncertainty.md has the figures)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agbm.cli import main
from agbm.data.layout import list_chips
from agbm.data.raw import chip_prediction, read_prediction, read_target
from agbm.data.synth import generate, next_year
from agbm.errors import DataError
from agbm.evaluation.calibration import (
    accumulate,
    accumulate_footprints,
    block_errors,
    calibrate,
)
from agbm.evaluation.change import ChangeIntervals
from agbm.inference.intervals import (
    PIXEL_BINS,
    ResidualCounts,
    bin_of,
    read_calibration,
)
from agbm.inference.options import InferenceOptions
from agbm.io import file_sha256
from tests.helpers import assert_at_least, assert_covers, write_calibration

CHIPS, SIZE = 128, 32


@pytest.fixture(scope="module")
def calibrated(
    learned: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The shared tiny model, calibrated on one set and scoring another."""
    root = tmp_path_factory.mktemp("calibration")
    paths = {name: root / name for name in ("train", "calibrate", "score")}
    generate(paths["train"], 16, 0, 11, SIZE)  # a few chips with targets, for quick runs
    for seed, name in ((12, "calibrate"), (13, "score")):
        generate(paths[name], 1, CHIPS, seed, SIZE)  # the test split: targets never trained on
    paths["model"] = learned[1] / "last.pt"
    paths["calib"] = root / "calib.json"
    args = ["calibrate", "--checkpoint", str(paths["model"]), "--data", str(paths["calibrate"]),
            "--tta", "none", "--workers", "0", "--amp", "off",
            "--out", str(paths["calib"])]  # fmt: skip
    assert main(args) == 0
    paths["pred"] = root / "pred"  # the third set, with its bounds
    args = ["predict", "--data", str(paths["score"]), "--checkpoint", str(paths["model"]),
            "--tta", "none", "--workers", "0", "--amp", "off", "--out", str(paths["pred"]),
            "--calibration", str(paths["calib"])]  # fmt: skip
    assert main(args) == 0
    return paths


def _scored(paths: dict[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    """The third set's predictions and truth, `[chips, H, W]`."""
    chips = list_chips(paths["score"], "test")
    truth = np.stack([read_target(paths["score"], c, split="test") for c in chips])
    pred = np.stack([chip_prediction(paths["pred"], c, (SIZE, SIZE)) for c in chips])
    return pred, truth


def test_per_pixel_90_percent_intervals_cover_88_to_92_percent_of_new_pixels(
    calibrated: dict[str, Path],
) -> None:
    calibration = read_calibration(calibrated["calib"])
    pred, truth = _scored(calibrated)
    low, high = calibration.bounds(pred, 0.9)
    covered = (truth >= low) & (truth <= high)
    assert_covers(list(covered), 0.9, (CHIPS, CHIPS * SIZE * SIZE))
    bins = bin_of(pred)
    for b in range(len(PIXEL_BINS)):
        share = float((bins == b).mean())
        if share >= 0.1:  # per bin, where it holds enough pixels: a tenth of them
            in_bin = [c[k == b] for c, k in zip(covered, bins, strict=True)]
            assert_covers(in_bin, 0.9, (CHIPS, int(share * CHIPS * SIZE * SIZE)))
    assert (low >= 0).all()


def test_block_mean_intervals_cover_at_every_calibrated_size(
    calibrated: dict[str, Path],
) -> None:
    calibration = read_calibration(calibrated["calib"])
    pred, truth = _scored(calibrated)
    assert sorted(int(s) for s in calibration.blocks) == [1, 4, 16]  # sides up to the chips'
    for side in (1, 4, 16):
        half, used = calibration.block_halfwidth(side * side, 0.9)
        assert used == side
        errors = [block_errors(p, t, side) for p, t in zip(pred, truth, strict=True)]
        blocks = CHIPS * (SIZE // side) ** 2
        assert_covers([e <= half for e in errors], 0.9, (CHIPS, blocks))


def _correlated_chip(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A 256 px chip's (prediction, truth) whose errors are correlated as a model's are: a
    bias of the whole chip (sd 8 t/ha), a field of 16 px patches (sd 10) and pixel noise
    (sd 20). The means of large blocks keep the bias, so per-pixel errors say little."""
    truth = rng.uniform(20.0, 250.0, (256, 256))
    patches = np.kron(rng.normal(0.0, 10.0, (16, 16)), np.ones((16, 16)))
    error = rng.normal(0.0, 8.0) + patches + rng.normal(0.0, 20.0, (256, 256))
    return truth + error, truth


def test_block_intervals_of_64_and_256_px_cover_correlated_errors() -> None:
    """The chips of `calibrated` are 32 px; the large blocks are checked on 256 px chips of
    known correlated errors, calibrated by `accumulate` (what `agbm calibrate` runs) on 500
    chips and scored on 500 others."""
    rng = np.random.default_rng(5)
    counts = ResidualCounts(["x"], "none")
    for _ in range(500):
        accumulate(counts, *_correlated_chip(rng))
    calibration = counts.to_calibration()
    scored = [_correlated_chip(rng) for _ in range(500)]
    pixel = calibration.pixel_quantiles(0.9)[3]  # 100-150 t/ha: the middle of the truth
    for side in (64, 256):
        half, used = calibration.block_halfwidth(side * side, 0.9)
        errors = [block_errors(p, t, side) for p, t in scored]
        assert used == side
        assert_covers([e <= half for e in errors], 0.9, (500, 500 * (256 // side) ** 2))
        # independent pixel errors would give the mean a width of pixel / side: far too narrow
        assert (np.concatenate(errors) <= pixel / side).mean() < 0.5


def test_chips_with_labels_are_calibrated_on_their_footprints(
    calibrated: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Half the calibration set as `agbm chips` would make it: the same images, 60 one-pixel
    labels a chip (discs of 0.4 px at pixel centres, so a footprint's mean is its pixel's)
    and no dense targets. Its intervals cover the third set's pixels as the dense ones do."""
    rng = np.random.default_rng(2)
    root = tmp_path / "labelled"
    (root / "test_labels").mkdir(parents=True)
    (root / "test_features").mkdir()
    chips = list_chips(calibrated["calibrate"], "test")[: CHIPS // 2]
    for chip in chips:
        for image in (calibrated["calibrate"] / "test_features").glob(f"{chip}_*.tif"):
            (root / "test_features" / image.name).symlink_to(image)
    out = tmp_path / "footprints.json"
    args = ["calibrate", "--checkpoint", str(calibrated["model"]), "--data", str(root),
            "--tta", "none", "--workers", "0", "--out", str(out)]  # fmt: skip
    assert main(args) == 2  # nothing to calibrate on yet: refused before predicting
    assert "no chip with labels (test_labels/)" in capsys.readouterr().err
    for chip in chips:
        target = read_target(calibrated["calibrate"], chip, split="test")
        rows, cols = rng.integers(0, SIZE, 60), rng.integers(0, SIZE, 60)
        pd.DataFrame({"row": rows + 0.5, "col": cols + 0.5, "radius_px": 0.4,
                      "agbd": target[rows, cols], "agbd_se": np.nan, "lon": 0.0, "lat": 0.0,
                      "date": "2021-07-01", "source": "test"}).to_csv(
            root / "test_labels" / f"{chip}_labels.csv", index=False)  # fmt: skip
    assert main(args) == 0
    assert "calibrate: 100%" in capsys.readouterr().err  # the CLI shows its progress
    options = InferenceOptions(calibrated["model"], tta="none")
    assert calibrate(root, options=options, workers=0) == read_calibration(out)
    assert "calibrate:" not in capsys.readouterr().err  # the library, only when asked
    calibration = read_calibration(out)
    assert calibration.residuals == "footprints" and list(calibration.blocks) == ["1"]
    assert sum(map(sum, calibration.pixel)) == sum(calibration.blocks["1"]) == CHIPS // 2 * 60
    assert calibration.block_halfwidth(1e6, 0.9)[1] == 1  # every zone takes the footprints'
    pred, truth = _scored(calibrated)
    low, high = calibration.bounds(pred, 0.9)
    covered = (truth >= low) & (truth <= high)
    assert_covers(list(covered), 0.9, (CHIPS // 2, CHIPS // 2 * 60))


def test_a_calibration_records_its_model_and_refuses_another(
    calibrated: dict[str, Path], tmp_path: Path
) -> None:
    record = json.loads(calibrated["calib"].read_text())
    assert record["tta"] == "none" and record["chips"] == CHIPS
    assert record["checkpoints"] == [file_sha256(calibrated["model"])]
    calibration = read_calibration(calibrated["calib"])
    calibration.check(record["checkpoints"], "none", calibrated["calib"])  # its own: accepted
    with pytest.raises(DataError, match=r"calib\.json: calibrated for checkpoints"):
        calibration.check(["0" * 64], "none", calibrated["calib"])
    with pytest.raises(DataError, match="not an agbm calibration"):
        (tmp_path / "x.json").write_text("{}")
        read_calibration(tmp_path / "x.json")


def test_predict_writes_the_bounds_and_evaluate_scores_their_coverage(
    calibrated: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, model = calibrated["pred"], str(calibrated["model"])
    chip = list_chips(calibrated["score"], "test")[0]
    agbm = chip_prediction(out, chip, (SIZE, SIZE))
    low, high = (read_prediction(out / f"{chip}_{x}.tif", (SIZE, SIZE)) for x in ("low", "high"))
    assert (low >= 0).all() and (low <= agbm).all() and (agbm <= high).all()
    assert not (out / f"{chip}_spread.tif").exists()  # one model, no TTA: nothing to spread
    assert main(["evaluate", "--pred", str(out), "--truth", str(calibrated["score"])]) == 0
    rows = capsys.readouterr().out
    coverage = float(rows.split("bounds: coverage, all pixels")[1].split("%")[0])
    pred, truth = _scored(calibrated)
    low, high = read_calibration(calibrated["calib"]).bounds(pred, 0.9)
    assert coverage == pytest.approx(100 * ((truth >= low) & (truth <= high)).mean(), abs=0.05)
    args = ["predict", "--checkpoint", model, "--workers", "0", "--calibration"]
    refused = [*args, str(calibrated["calib"]), "--data", str(calibrated["score"])]
    assert main([*refused, "--out", str(tmp_path / "x"), "--tta", "hv"]) == 2
    assert "calibrated for checkpoints" in capsys.readouterr().err  # calibrated without TTA
    hv, train = tmp_path / "calib-hv.json", str(calibrated["train"])  # 16 chips: quick
    assert main(["calibrate", "--checkpoint", model, "--data", train, "--split", "train",
                 "--tta", "hv", "--workers", "0", "--out", str(hv)]) == 0  # fmt: skip
    spread = tmp_path / "spread"
    assert main([*args, str(hv), "--data", train, "--split", "train", "--tta", "hv",
                 "--out", str(spread)]) == 0  # fmt: skip
    first = list_chips(calibrated["train"], "train")[0]
    assert (spread / f"{first}_spread.tif").is_file()  # two passes: their spread too


@pytest.mark.parametrize("coverage", ["1.5", "0", "nan"])
def test_a_coverage_outside_0_to_1_is_refused_before_predicting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    coverage: str,
) -> None:  # fmt: skip
    import agbm.evaluation.calibration

    monkeypatch.setattr(agbm.evaluation.calibration, "calibrate", lambda *_: pytest.fail("ran"))
    generate(tmp_path / "data", 1, 2, 0, SIZE)
    (tmp_path / "m.pt").write_bytes(b"")  # never read
    out, data = tmp_path / "calib.json", str(tmp_path / "data")
    assert main(["calibrate", "--checkpoint", str(tmp_path / "m.pt"), "--data", data,
                 "--out", str(out), "--coverage", coverage]) == 2  # fmt: skip
    refused = f"--coverage must be between 0 and 1 (e.g. 0.9), not {float(coverage)}"
    assert capsys.readouterr().err == f"agbm calibrate: error: {refused}\n"
    assert not out.exists()


def _edit(record: dict, what: str) -> None:
    """One hand edit of a calibration file's JSON `record`."""
    if what == "format":
        record["format"] = "agbm-calibration-9"
    elif what == "bins":
        record["pixel"] = record["pixel"][:3]
    elif what == "negative":
        record["pixel"][2] = [5, -3]
    elif what == "strings":
        record["pixel"][1] = ["12", "x"]
    elif what == "blocks":
        record["blocks"] = {"1": [1], "3": [1]}


@pytest.mark.parametrize(
    "edit, message",
    [
        ("format", "format 'agbm-calibration-9', not one of agbm-calibration-1, agbm-calib"),
        ("bins", "pixel holds 3 bins, not 7, one per bin of AGB"),
        ("negative", "the pixel bin of 50-100 t/ha holds -3, not a count of residuals"),
        ("strings", "the pixel bin of 25-50 t/ha holds '12', not a count of residuals"),
        ("blocks", "blocks is not a map from some of the sides 1, 4, 16, 64, 256 px"),
    ],
)
def test_a_hand_edited_calibration_is_refused_in_one_line_naming_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: str, message: str
) -> None:
    """Bins holding strings gave `predict` a traceback; 3 of 7 bins, negative counts and
    another format were taken."""
    checkpoint = tmp_path / "m.pt"
    checkpoint.write_bytes(b"")  # refused before it is read
    calib = write_calibration(checkpoint, "none", [10.0] * 7, tmp_path / "calib.json")
    record = json.loads(calib.read_text())
    _edit(record, edit)
    calib.write_text(json.dumps(record))
    refused = f"calib.json: not an agbm calibration ({message}"
    with pytest.raises(DataError, match=re.escape(refused)):
        read_calibration(calib)
    generate(tmp_path / "data", 1, 2, 0, SIZE)
    out = tmp_path / "pred"
    assert main(["predict", "--data", str(tmp_path / "data"), "--checkpoint", str(checkpoint),
                 "--tta", "none", "--calibration", str(calib), "--out", str(out)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("agbm predict: error: ") and err.count("\n") == 1
    assert refused in err and not out.exists()


@pytest.fixture(scope="module")
def later(calibrated: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The calibration and third sets one year later (`synth --next-year-of`: growth,
    clear-cuts, new imagery); the pair of calibration years calibrates the change itself
    (`agbm calibrate --change`), and the third set's later year is predicted by the same
    model (without bounds)."""
    root = tmp_path_factory.mktemp("later")
    paths = {"calibrate": root / "calibrate", "score": root / "score", "pred": root / "pred"}
    next_year(calibrated["calibrate"], paths["calibrate"], 15)
    next_year(calibrated["score"], paths["score"], 14)
    model = ["--checkpoint", str(calibrated["model"]), "--tta", "none", "--workers", "0",
             "--amp", "off"]  # fmt: skip
    paths["paired"] = root / "paired.json"
    args = ["calibrate", "--change", "--from", str(calibrated["calibrate"]),
            "--to", str(paths["calibrate"]), *model, "--out", str(paths["paired"])]  # fmt: skip
    assert main(args) == 0
    args = ["predict", "--data", str(paths["score"]), *model, "--out", str(paths["pred"])]
    assert main(args) == 0
    return paths


def _changes(
    calibrated: dict[str, Path], later: dict[str, Path]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The third set's predictions in both years and its true change, `[chips, H, W]`."""
    before, truth_before = _scored(calibrated)
    chips = list_chips(later["score"], "test")
    after = np.stack([chip_prediction(later["pred"], c, (SIZE, SIZE)) for c in chips])
    true = np.stack([read_target(later["score"], c, split="test") for c in chips]) - truth_before
    return before, after, true


def _layers(intervals: ChangeIntervals, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The change's layers `[chips, 4, H, W]` (change, low, high, significance)."""
    return np.stack([intervals.layers(a, b) for a, b in zip(before, after, strict=True)])


def test_union_bound_change_intervals_cover_a_later_years_true_change(
    calibrated: dict[str, Path], later: dict[str, Path]
) -> None:
    """The third set and its later year, predicted by the same model: the 90 % change
    intervals of the union bound, made from the stock calibration alone, cover at least
    90 % of the pixels' true changes and of their 16 px block means (conservative:
    docs/change.md has the figures), and flag few unchanged pixels."""
    before, after, true = _changes(calibrated, later)
    intervals = ChangeIntervals(read_calibration(calibrated["calib"]), 0.9)
    layers = _layers(intervals, before, after)
    covered = (layers[:, 1] <= true) & (true <= layers[:, 2])
    assert_at_least(list(covered), 0.9, (CHIPS, CHIPS * SIZE * SIZE))
    half = intervals.minimum_detectable()[16]  # a block's change half-width at zero change
    errors = [block_errors(b - a, t, 16) for a, b, t in zip(before, after, true, strict=True)]
    assert_at_least([e <= half for e in errors], 0.9, (CHIPS, CHIPS * 4))
    unchanged = np.abs(true) < 5
    flagged = [(s != 0)[u] for s, u in zip(layers[:, 3], unchanged, strict=True)]
    assert np.concatenate(flagged).mean() < 0.1  # false changes: well under 1 - coverage
    cut = true < -50
    print(
        f"covered {covered.mean():.3f}, mean width {np.mean(layers[:, 2] - layers[:, 1]):.1f} "
        f"t/ha, 16 px blocks {np.concatenate([e <= half for e in errors]).mean():.3f} "
        f"(half-width {half:.1f}), clear-cut pixels flagged as loss "
        f"{(layers[:, 3][cut] == -1).mean():.2f} of {cut.sum()}, unchanged flagged "
        f"{np.concatenate(flagged).mean():.4f}"
    )


def test_paired_90_percent_change_intervals_cover_88_to_92_percent_and_are_narrower(
    calibrated: dict[str, Path], later: dict[str, Path]
) -> None:
    """The change calibrated on the second set's pair of years (`calibrate --change`),
    scored on the third's: its 90 % intervals cover 90 % of the true changes within 3
    standard errors (`assert_covers`: the chips are the units, since a chip's pixels and
    blocks share its clear-cuts and its errors) in each bin of predicted change holding a
    tenth of the pixels and at every calibrated block size; they are narrower than the
    union bound's; they flag at least half the true clear-cut pixels as loss and the
    unchanged ones no more often than 1 - coverage (docs/change.md has the figures)."""
    paired = read_calibration(later["paired"], "change")
    assert paired.chips == CHIPS and sorted(int(s) for s in paired.blocks) == [1, 4, 16]
    before, after, true = _changes(calibrated, later)
    intervals = ChangeIntervals(paired, 0.9)
    layers = _layers(intervals, before, after)
    covered = (layers[:, 1] <= true) & (true <= layers[:, 2])
    assert_covers(list(covered), 0.9, (CHIPS, CHIPS * SIZE * SIZE))
    bins = bin_of(after - before, paired.bins)
    checked = 0
    for b, residuals in enumerate(paired.pixel):
        if (bins == b).mean() >= 0.1:
            in_bin = [c[k == b] for c, k in zip(covered, bins, strict=True)]
            assert_covers(in_bin, 0.9, (CHIPS, sum(residuals)))
            checked += 1
    assert checked >= 3  # -20 to -5, -5 to 5, 5-20 t/ha at least
    union = ChangeIntervals(read_calibration(calibrated["calib"]), 0.9)
    for side, half in intervals.minimum_detectable().items():
        errors = [block_errors(b - a, t, side) for a, b, t in zip(before, after, true, strict=True)]
        assert_covers([e <= half for e in errors], 0.9, (CHIPS, sum(paired.blocks[str(side)])))
        assert half < union.minimum_detectable()[side]
    width, union_width = (
        np.mean(x[:, 2] - x[:, 1]) for x in (layers, _layers(union, before, after))
    )
    assert width < union_width
    cut = true < -50
    assert (layers[:, 3][cut] == -1).mean() >= 0.5
    unchanged = np.abs(true) < 5
    quiet = [(s == 0)[u] for s, u in zip(layers[:, 3], unchanged, strict=True)]
    assert_at_least(quiet, 0.9, (CHIPS, int(unchanged.sum())))  # flagged: at most ~10 %
    print(
        f"paired: covered {covered.mean():.3f}, mean width {width:.1f} t/ha (union "
        f"{union_width:.1f}), clear-cut pixels flagged as loss "
        f"{(layers[:, 3][cut] == -1).mean():.2f}, unchanged flagged "
        f"{1 - np.concatenate(quiet).mean():.4f}"
    )


def test_a_change_is_calibrated_only_on_chips_both_years_hold(
    calibrated: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two roots of other chips (other seeds' ids) are refused before any prediction, in one
    line naming both; so are --data with --change, and --change without --to."""
    data = [str(calibrated[name]) for name in ("calibrate", "score")]
    args = ["calibrate", "--checkpoint", str(calibrated["model"]), "--tta", "none",
            "--out", str(tmp_path / "paired.json")]  # fmt: skip
    assert main([*args, "--change", "--from", data[0], "--to", data[1]]) == 2
    err = capsys.readouterr().err
    assert f"{data[0]} and {data[1]} share no test chip with targets in both" in err
    assert err.count("\n") == 1
    assert main([*args, "--change", "--from", data[0], "--data", data[1]]) == 2
    assert "--change calibrates on --from A --to B (not --data)" in capsys.readouterr().err
    assert main([*args, "--from", data[0], "--to", data[1]]) == 2
    assert "give --data, or --change --from A --to B" in capsys.readouterr().err
    assert not (tmp_path / "paired.json").exists()


def test_footprints_are_counted_for_the_pixels_and_the_smallest_block_only() -> None:
    """A label's residual is its footprint's mean against its agbd, binned by the mean; a
    label without agbd counts nothing, and no block larger than a footprint is measured."""
    counts = ResidualCounts(["x"], "none", "footprints")
    pred = np.full((8, 8), 40.0, np.float32)
    labels = np.array([[2.5, 2.5, 0.4, 41.02, np.nan], [5.5, 5.5, 0.4, np.nan, np.nan]], np.float32)
    accumulate_footprints(counts, pred, labels)
    calibration = counts.to_calibration()
    assert calibration.residuals == "footprints" and list(calibration.blocks) == ["1"]
    assert calibration.pixel[1] == calibration.blocks["1"] == [0] * 20 + [1]  # 1.02 t/ha
    assert sum(map(sum, calibration.pixel)) == 1 and calibration.chips == 1
