"""The benchmarks, each a script run as `python bench/NAME.py` (one line per figure;
docs/benchmarks.md). `catalog` (a static STAC catalog of synthetic imagery) and `adaptation`
(the sparse-label experiment and its tiny model) are also what the tests build on, as
`bench.catalog` and `bench.adaptation`: the tests use the benchmarks' builders, and the
benchmarks need nothing from the tests."""
