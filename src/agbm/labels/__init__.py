"""The labels wing: points where the biomass is known, from their sources to the chips.

`frame` is a labels file (its columns, its checks, read and written), `gedi` reads GEDI L4A
granules and `plots` users' field-plot tables as labels, `collect` joins them for `agbm
labels`, and `chips` places labels on chips by their grids (`agbm chips`, `agbm train
--labels`). It reads files through `agbm.data` and is read by training, evaluation, the
region and the CLI. Nothing is imported here: `agbm labels` loads only what it uses.
"""
