"""`python -m agbm.cli` prints the CLI reference (docs/cli.md)."""

from agbm.cli import reference

print(reference(), end="")
