"""agbm: forest above-ground biomass maps from Sentinel-1 + Sentinel-2 time series."""

__version__ = "0.1.0"
