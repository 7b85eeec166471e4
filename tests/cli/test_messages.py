"""The library names its parameters (`coverage`); the CLI's one error handler spells them as
the running command's flags (--coverage)."""

from __future__ import annotations

import warnings

import pytest

from agbm.cli import as_flags, build_parser, command_flags, main
from agbm.errors import AgbmWarning
from agbm.inference.intervals import check_coverage


def test_a_library_error_names_the_parameter_and_the_cli_its_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ValueError, match=r"^`coverage` must be between 0 and 1 \(e.g. 0.9\)"):
        check_coverage(1.5)
    args = ["predict-scene", "--s1", "a.tif", "--s2", "b.tif", "--out", "m.tif",
            "--checkpoint", "c.pt", "--calibration", "c.json", "--coverage", "1.5"]  # fmt: skip
    assert main(args) == 2
    said = "agbm predict-scene: error: --coverage must be between 0 and 1 (e.g. 0.9), not 1.5\n"
    assert capsys.readouterr().err == said


def test_only_the_running_command_s_parameters_become_flags() -> None:
    flags = command_flags(build_parser(["predict-scene"]), "predict-scene")
    text = "`batch_size` and `checkpoints`, not `zones` nor `no such`"
    # a plural names an option taking several values; a word of no option stays as it is
    assert as_flags(text, flags) == "--batch-size and --checkpoint, not `zones` nor `no such`"


def test_a_library_warning_is_one_line_of_the_command_naming_its_flag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def run(args: object) -> int:
        warnings.warn("too few residuals for `coverage` 0.9", AgbmWarning, stacklevel=1)
        warnings.warn("a foreign warning", UserWarning, stacklevel=1)
        return 0

    parser = build_parser(["stats"])
    monkeypatch.setattr("agbm.cli.build_parser", lambda commands: parser)
    stats = next(a for a in parser._actions if a.dest == "command").choices["stats"]
    stats.set_defaults(func=run)
    with pytest.warns(UserWarning, match="a foreign warning"):
        assert main(["stats", "--zones", "z.gpkg", "--out", "s.csv"]) == 0
    err = capsys.readouterr().err
    assert err == "agbm stats: warning: too few residuals for --coverage 0.9\n"
