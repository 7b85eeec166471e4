"""`python -m agbm ...` (and `torchrun -m agbm ...`) runs the command-line interface."""

from agbm.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
