"""The command line: every command has --help, and docs/cli.md is what --help says."""

from __future__ import annotations

import argparse
import ast
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agbm.cli import COMMANDS, build_parser, main, one_line, reference
from agbm.data.layout import features_folder, targets_folder
from tests.helpers import REPO

DOCS = REPO / "docs" / "cli.md"


def commands() -> list[str]:
    return [line.split()[2] for line in reference().splitlines() if line.startswith("## agbm ")]


def test_every_command_module_contributes_a_command() -> None:
    assert commands() == list(COMMANDS)


@pytest.mark.parametrize(
    "command",
    ["synth", "info", "prepare", "train", "predict", "predict-scene", "evaluate", "plot", "demo"],
)
def test_every_command_has_help(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: agbm {command}" in out
    if command == "demo":  # its options used to show no defaults
        assert "(default: 10)" in out and "(default: resnet18)" in out


def test_docs_cli_reference_is_current() -> None:
    assert DOCS.read_text() == reference(), "regenerate: python -m agbm.cli > docs/cli.md"


def test_unknown_command_is_rejected() -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["fly"])
    assert exit_info.value.code == 2


def test_no_help_imports_a_model_library() -> None:
    """`agbm --help` used to build every command's parser, importing torch, timm, smp and
    matplotlib (4-5 s, 900 MiB); now it imports only the command given. And no command's
    module imports torch, timm or smp before it runs (`agbm labels --help` took 2 s and
    740 MiB). One fresh interpreter: `agbm --help`, then each command's --help in order,
    naming those after which a model library is loaded (the first is the culprit)."""
    code = (
        "import contextlib, io, sys\nfrom agbm.cli import COMMANDS, main\n"
        "def run(args):\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as out, "
        "contextlib.suppress(SystemExit):\n"
        "        main(args)\n"
        "    return out.getvalue()\n"
        "def loaded(names):\n"
        "    return sorted(m for m in names if m in sys.modules)\n"
        "listed = run(['--help'])\n"
        "print(loaded(('torch', 'timm', 'matplotlib', 'rasterio')), 'predict-scene' in listed)\n"
        "after = []\n"
        "for name in COMMANDS:\n"
        "    assert run([name, '--help']).startswith(f'usage: agbm {name}')\n"
        "    if loaded(('torch', 'timm', 'segmentation_models_pytorch')):\n"
        "        after.append(name)\n"
        "print(after)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-2:] == ["[] True", "[]"], done.stdout


#: The options several commands take, each defined by one function of `agbm.cli.options`.
SHARED_OPTIONS = {
    "--bbox", "--region", "--year", "--catalog", "--s2-catalog", "--scheduler", "--retries",
    "--window", "--overlap", "--checkpoint", "--tta", "--batch-size", "--amp", "--calibration",
}  # fmt: skip


def test_an_option_several_commands_take_is_defined_once() -> None:
    """Spelled again in a command's module, one copy's type, default or help drifts."""
    spelled = [
        f"{path.name}:{node.lineno} {node.args[0].value}"
        for path in sorted((REPO / "src" / "agbm" / "cli").glob("*.py"))
        if path.name != "options.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", None) == "add_argument"
        and node.args
        and getattr(node.args[0], "value", None) in SHARED_OPTIONS
    ]
    assert spelled == []


def test_map_region_takes_its_tile_size_and_placements_from_the_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--tile-size`'s default and `--predict-on`'s choices are the region code's own."""
    import agbm.cli.map_region
    from agbm.region import cluster, grid

    with monkeypatch.context() as patched:
        patched.setattr(grid, "TILE_SIZE", 2048)
        patched.setattr(cluster, "PREDICT_ON", ("auto", "gpu"))
        importlib.reload(agbm.cli.map_region)
        parser = argparse.ArgumentParser()
        agbm.cli.map_region.add_arguments(parser)
    importlib.reload(agbm.cli.map_region)
    options = {a.dest: a for a in parser._actions}
    assert options["tile_size"].default == 2048 and "(default 2048: 20.48 km" in (
        options["tile_size"].help
    )
    assert list(options["predict_on"].choices) == ["auto", "gpu"]


def test_a_worker_error_is_its_own_message_whatever_it_chains() -> None:
    """torch re-raises a DataLoader worker's error with the worker's traceback as message;
    a rasterio error chains causes without a traceback of their own, so the old search for
    'Original Traceback' printed the whole flattened traceback."""
    from agbm.errors import DataError

    text = (
        "Caught DataError in DataLoader worker process 1.\nOriginal "
        "rasterio._err.CPLE_AppDefinedError: TIFFReadEncodedStrip() failed.\n\n"
        "The above exception was the direct cause of the "
        'following exception:\n\nTraceback (most recent call last):\n  File "x.py", line 4\n'
        "agbm.errors.DataError: a/b_S2_05.tif: unreadable or truncated GeoTIFF (IReadBlock: failed)"
    )
    assert (
        one_line(DataError(text))
        == "a/b_S2_05.tif: unreadable or truncated GeoTIFF (IReadBlock: failed)"
    )
    assert one_line(FileNotFoundError(2, "No such file or directory", "x.tif")) == (
        "x.tif: No such file or directory"
    )


def test_ctrl_c_is_one_line_on_what_is_kept(monkeypatch, tmp_path, capsys) -> None:
    """Ctrl-C printed a full KeyboardInterrupt traceback."""
    import agbm.cli.synth

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(agbm.cli.synth, "generate", interrupted)
    assert main(["synth", "--out", str(tmp_path / "s")]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err and "run the same command again" in err


def test_reason_follows_a_message_that_only_points_back() -> None:
    """rasterio's 'Read failed. See previous exception for details.' said nothing; the
    chained cause says what failed."""
    from agbm.errors import reason

    try:
        try:
            raise OSError("IReadBlock failed at X offset 0")
        except OSError as inner:
            raise RuntimeError("Read failed. See previous exception for details.") from inner
    except RuntimeError as outer:
        assert reason(outer) == "IReadBlock failed at X offset 0"
    assert reason(ValueError()) == "ValueError"


# --- outputs never overwrite inputs, even with --overwrite ----------------------------------


@pytest.fixture
def labelled_map(tmp_path: Path) -> tuple[Path, Path]:
    """A 4 x 4 px UTM map of 10 t/ha and a labels file of one footprint on it."""
    from affine import Affine
    from pyproj import Transformer

    from agbm.data.geotiff import write_geotiff
    from agbm.labels.frame import labels_frame, write_labels

    x0, y0 = 500000.0, 6800040.0
    agbd_map = tmp_path / "map.tif"
    values = np.full((4, 4), 10, np.float32)
    write_geotiff(agbd_map, values, UTM, Affine(10, 0, x0, 0, -10, y0), np.nan, ["agbm"], {})
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(x0 + 20, y0 - 20)
    labels = write_labels(labels_frame([lon], [lat], [12.0], 1.0, 5.0), tmp_path / "labels.gpkg")
    return labels, agbd_map


UTM = "EPSG:32635"


def _refused(args: list[str], kept: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run `agbm ARGS`; assert exit code 2, `kept` unchanged byte for byte (every file of it,
    for a folder) and one line; returns the line."""
    files = sorted(kept.rglob("*")) if kept.is_dir() else [kept]
    before = {f: f.read_bytes() for f in files if f.is_file()}
    assert main(args) == 2
    assert {f: f.read_bytes() for f in files if f.is_file()} == before
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "outputs never replace inputs)" in err
    return err


@pytest.mark.parametrize("target", ["labels", "map"])
def test_evaluate_never_writes_its_per_point_csv_over_the_labels_or_the_map(
    labelled_map: tuple[Path, Path], target: str, capsys
) -> None:
    """`--per-point L` (or `M`) replaced that input with the CSV, exit 0."""
    labels, agbd_map = labelled_map
    kept = {"labels": labels, "map": agbd_map}[target]
    args = ["evaluate", "--labels", str(labels), "--map", str(agbd_map), "--per-point", str(kept)]
    err = _refused(args, kept, capsys)
    assert f"{kept} is one of this command's inputs {kept}" in err


def test_evaluate_never_writes_its_per_chip_csv_over_a_target(synth_root: Path, tmp_path, capsys):
    """`--per-chip` naming a truth target replaced it with the CSV, exit 0."""
    data = Path(shutil.copytree(synth_root, tmp_path / "data"))
    pred = tmp_path / "pred"
    shutil.copytree(targets_folder(data, "test"), pred)  # a perfect prediction
    target = next(targets_folder(data, "test").glob("*_agbm.tif"))
    args = ["evaluate", "--pred", str(pred), "--truth", str(data), "--per-chip", str(target)]
    err = _refused(args, target, capsys)
    assert f"{target} is inside the input folder {targets_folder(data, 'test')}" in err


def _model(path: Path) -> Path:
    from agbm.models import TemporalUNet, save_model

    save_model(path, TemporalUNet("resnet18", decoder_channels=(16,) * 5))
    return path


@pytest.mark.parametrize("where", ["test_agbm", ".", "test_agbm/sub", ".."])
def test_predict_never_writes_into_or_over_the_data(
    synth_root: Path, tmp_path: Path, where: str, capsys
) -> None:
    """`--out D/test_agbm --overwrite` replaced the ground truth with predictions (evaluate
    then reported RMSE 0.000), exit 0; so would the data root, a folder inside it or one
    holding it."""
    data = Path(shutil.copytree(synth_root, tmp_path / "all" / "data"))
    out = data / where
    args = ["predict", "--data", str(data), "--checkpoint", str(_model(tmp_path / "m.pt"))]
    args += ["--out", str(out), "--overwrite", "--tta", "none", "--workers", "0"]
    err = _refused(args, data, capsys)
    assert str(data) in err and str(out) in err


def test_predict_scene_never_writes_its_map_over_the_checkpoint(
    synth_root: Path, tmp_path: Path, capsys
) -> None:
    """`--checkpoint m.pt --out m.pt --overwrite` replaced the checkpoint with a GeoTIFF."""
    chip = next(targets_folder(synth_root, "test").glob("*_agbm.tif")).name.split("_")[0]
    scene = features_folder(synth_root, "test") / chip
    checkpoint = _model(tmp_path / "m.pt")
    args = ["predict-scene", "--s1", f"{scene}_S1_{{MM}}.tif", "--s2", f"{scene}_S2_{{MM}}.tif"]
    args += ["--checkpoint", str(checkpoint), "--out", str(checkpoint), "--overwrite"]
    args += ["--window", "64", "--overlap", "0", "--tta", "none"]
    err = _refused(args, checkpoint, capsys)
    assert f"{checkpoint} is one of this command's inputs {checkpoint}" in err


def test_a_full_disk_names_the_file_being_written(
    labelled_map: tuple[Path, Path], tmp_path: Path, monkeypatch, capsys
) -> None:
    """`[Errno 28] No space left on device` named no file."""
    import errno
    import os

    import pandas

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pandas.DataFrame, "to_csv", full)
    labels, agbd_map = labelled_map
    per_point = tmp_path / "points.csv"
    args = ["evaluate", "--labels", str(labels), "--map", str(agbd_map), "--per-point"]
    assert main([*args, str(per_point)]) == 2
    assert capsys.readouterr().err == (
        f"agbm evaluate: error: {per_point}: No space left on device while writing it: free "
        "some space there, or write it elsewhere\n"
    )
    assert not any(p.name.startswith(".points.csv") for p in tmp_path.iterdir())


def test_train_never_deletes_or_replaces_the_checkpoint_it_starts_from(
    trained: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    """`train --out run --init run/best.pt --overwrite` deleted best.pt before reading it."""
    data, checkpoint = trained
    run = Path(shutil.copytree(checkpoint.parent, tmp_path / "run"))
    args = ["train", "--data", str(data), "--out", str(run), "--init", str(run / "last.pt")]
    err = _refused([*args, "--overwrite", "--backbone", "resnet18", "--epochs", "1"], run, capsys)
    assert f"{run / 'last.pt'} is one of this command's inputs" in err


@pytest.mark.parametrize("where", [".", "train_features", "train_agbm/cache"])
def test_prepare_never_writes_its_cache_into_the_chips_it_reads(
    synth_root: Path, tmp_path: Path, where: str, capsys
) -> None:
    data = Path(shutil.copytree(synth_root, tmp_path / "data"))
    _refused(["prepare", "--data", str(data), "--out", str(data / where)], data, capsys)


def test_synth_never_writes_over_a_data_set(synth_root: Path, tmp_path: Path, capsys) -> None:
    """`agbm synth --out ROOT` of a real data root mixed synthetic chips into it and replaced
    its metadata CSVs."""
    data = Path(shutil.copytree(synth_root, tmp_path / "data"))
    before = {f: f.read_bytes() for f in data.rglob("*") if f.is_file()}
    assert main(["synth", "--out", str(data), "--chips", "1", "--size", "32"]) == 2
    assert f"{data} holds a data set already (train, test): give a new folder" in (
        capsys.readouterr().err
    )
    assert {f: f.read_bytes() for f in data.rglob("*") if f.is_file()} == before
