"""The labels wing: points where the biomass is known, from their sources to the chips.

`frame` is a labels file (its columns, its checks, read and written), `gedi` reads GEDI L4A
granules and `plots` users' field-plot tables as labels, `collect` joins them for `agbm
labels`, `chips` places labels on chips by their grids (`agbm chips`, `agbm train
--labels`), and `footprints` is what a label is compared with, its footprint mean, on a
chip's prediction (training, calibration) or on a map file (`agbm evaluate --labels`). It
reads files through `agbm.data` and is read by training, evaluation, the region and the
CLI. Nothing is imported here: `agbm labels` loads only what it uses.
"""
