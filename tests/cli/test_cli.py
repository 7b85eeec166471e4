"""The command line: every command has --help, and docs/cli.md is what --help says."""

from __future__ import annotations

import pytest

from agbm.cli import COMMAND_MODULES, build_parser, main, reference
from tests.helpers import REPO

DOCS = REPO / "docs" / "cli.md"


def commands() -> list[str]:
    return [line.split()[1] for line in reference().splitlines() if line.startswith("## agbm ")]


def test_every_command_module_contributes_a_command() -> None:
    assert len(commands()) >= len(COMMAND_MODULES)


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
