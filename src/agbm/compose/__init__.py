"""From a place and a year to the model's inputs: monthly Sentinel-1 and Sentinel-2 stacks
composed from a STAC catalog (the `compose` extra: pystac-client, odc-stac,
planetary-computer).

`catalog` opens and searches a STAC API or a static catalog, `grid` makes the 10 m output
grid, `s1` and `s2` compose one month of each mission as the BioMassters chips hold it, and
`stacks` writes the year's stacks, resumably. docs/compose.md lists where the result
differs from the challenge's own inputs.
"""

from agbm.compose.stacks import Composed, compose

__all__ = ["Composed", "compose"]
