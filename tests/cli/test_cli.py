"""The command line: every command has --help, and docs/cli.md is what --help says."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agbm.cli import COMMANDS, build_parser, main, one_line, reference
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


def test_top_level_help_imports_no_heavy_library() -> None:
    """`agbm --help` used to build every command's parser, importing torch, timm, smp and
    matplotlib (4-5 s, 900 MiB); now it imports only the command given."""
    code = (
        "import sys\nfrom agbm.cli import main\ntry:\n    main(['--help'])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'timm', 'matplotlib', 'rasterio') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"
    assert "predict-scene" in done.stdout


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
