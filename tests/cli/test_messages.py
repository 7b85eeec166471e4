"""The library names its parameters (`coverage`); the CLI's one error handler spells them as
the running command's flags (--coverage)."""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import pytest

import agbm
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


#: A flag in a string: `--name`, not inside a word or backticks.
_FLAG = re.compile(r"(?<![\w`-])--[a-z][a-z0-9-]+")
#: Text before a flag that makes it a hint to run another command ("agbm labels --plots").
_COMMAND_HINT = re.compile(r"agbm [a-z-]+\b[^()]*$")
#: Modules whose strings are a command's help by construction: the training settings are
#: `agbm train`'s flags (its parser is made from them).
_FLAG_TEXT = {"training/config.py"}


def _flags_spoken(path: Path) -> list[str]:
    """The flags that the strings of a module name (not its docstrings), as `line: text`."""
    tree = ast.parse(path.read_text())
    owners = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, owners) and node.body and isinstance(node.body[0], ast.Expr)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            for flag in _FLAG.finditer(node.value):
                if not _COMMAND_HINT.search(node.value[: flag.start()]):
                    found.append(f"{node.lineno}: {node.value}")
    return found


def test_the_library_names_parameters_not_flags() -> None:
    """A library message names `parameters` (the CLI spells them as flags, above); a flag
    in the library's own strings would be wrong for a library user and for any command
    whose flag has another name. Hints to run another command are fine."""
    root = Path(agbm.__file__).parent
    spoken = {
        str(path.relative_to(root)): found
        for path in sorted(root.rglob("*.py"))
        if "cli" not in path.relative_to(root).parts
        and str(path.relative_to(root)) not in _FLAG_TEXT
        and (found := _flags_spoken(path))
    }
    assert spoken == {}


def test_the_flag_scan_finds_a_planted_flag(tmp_path: Path) -> None:
    planted = tmp_path / "m.py"
    planted.write_text('"""Docs may say --overwrite."""\nX = "give --coverage"\n'
                       'Y = "see agbm labels --plots"\n')  # fmt: skip
    assert _flags_spoken(planted) == ["2: give --coverage"]
