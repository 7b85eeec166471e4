"""Calibrated intervals: the calibration file, both ways, and the bounds it gives a map.

Split-conformal: on chips the model never trained on, the absolute residuals |prediction -
truth| are counted per pixel, in Mondrian bins of the predicted AGB (`PIXEL_BINS`, t/ha: the
error grows with the biomass), and for the means over square blocks of `BLOCK_SIDES` pixels
a side (1 pixel = 0.01 ha to 256 = 655 ha, the chips' sub-windows). The conformal quantile
at coverage c of n residuals is the ceil((n + 1) c)-th smallest: if calibration and new
pixels are exchangeable, a new residual is below it with probability at least c. The
residuals are counted in histograms of `STEP` t/ha and each quantile is taken at the upper
edge of its histogram bin, so the intervals are conservative by at most `STEP`. Fewer than
c / (1 - c) residuals (`residuals_needed`: 9 at 0.9, 9,999 at 0.9999) give no quantile: a
coverage no bin (or block) can give is refused before any work, and a bin that cannot
leaves its pixels without bounds (NaN), which is said (`Calibration.pixel_note`).

A calibration belongs to its checkpoints (SHA-256) and TTA: another model's map is refused.
It is of one `kind`: of the stocks (a map's AGB, binned by the predicted AGB), or of the
change between two years (`agbm calibrate --change`: the residuals of the change itself,
binned by the predicted change, `CHANGE_BINS`). Each file holds its bins' edges and its
kind; one of the other kind is refused where it is read (`read_calibration`), and a file
without them (formats 1 and 2) is of the stocks.

This module owns the file: `ResidualCounts` counts the histograms while `agbm calibrate`
goes (in NumPy; `agbm.evaluation.calibration` computes the residuals it is given) and makes
the file's `Calibration` of them (`to_calibration`), which `Calibration.write` writes and
`read_calibration` reads back, checked field by field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from agbm.errors import DataError, reason
from agbm.io import replacing

#: Edges of the Mondrian bins of predicted AGB, t/ha: each bin's lower edge, the first bin
#: holding what is below it too (no data), the last open above.
PIXEL_BINS = (0.0, 25.0, 50.0, 100.0, 150.0, 200.0, 300.0)
#: Sides of the calibrated square blocks, pixels (0.01 ha .. 655 ha at 10 m).
BLOCK_SIDES = (1, 4, 16, 64, 256)
#: The area of the chips' pixels (10 m), ha: the unit of the blocks, on a map of any grid.
PIXEL_HA = 0.01
#: Histogram step and range of the residuals, t/ha.
STEP, TOP = 0.05, 2000.0
EDGES = np.arange(0.0, TOP + STEP, STEP)
#: Edges of the bins of the predicted change B - A, t/ha, as `PIXEL_BINS`' (lower edges):
#: the first bin, open below, holds losses of over 100 t/ha (clear-cuts), the middle one
#: -5 to 5 (no change), the last gains of 50 t/ha and more. The first edge is only a floor
#: no change goes below (the residuals' own range).
CHANGE_BINS = (-TOP, -100.0, -50.0, -20.0, -5.0, 5.0, 20.0, 50.0)
#: The calibration files' formats, the one written last (2 added `residuals`, 3 `kind` and
#: `bins`).
FORMATS = ("agbm-calibration-1", "agbm-calibration-2", "agbm-calibration-3")
#: What a calibration's residuals are of: dense targets' pixels, or labels' footprints.
RESIDUALS = ("pixels", "footprints")
#: What a calibration calibrates (its `kind`) -> what its pixels are binned by.
KINDS = {"stock": "AGB", "change": "predicted change"}


def check_coverage(coverage: float) -> None:
    """Refuse a coverage outside (0, 1), NaN too, in one line naming `--coverage`."""
    if not 0 < coverage < 1:
        raise ValueError(f"`coverage` must be between 0 and 1 (e.g. 0.9), not {coverage}")


def residuals_needed(coverage: float) -> int:
    """The fewest residuals with a conformal quantile at `coverage`: the least n with
    ceil((n + 1) coverage) <= n, i.e. n >= coverage / (1 - coverage) (9 at 0.9, 9,999 at
    0.9999)."""
    check_coverage(coverage)
    n = max(1, math.ceil(coverage / (1 - coverage)) - 1)  # the bound, less float rounding
    while math.ceil((n + 1) * coverage) > n:
        n += 1
    return n


def conformal_quantile(counts: np.ndarray, coverage: float) -> float:
    """The conformal quantile at `coverage` of the residuals counted in `counts` (over
    `EDGES`): the upper edge of the bin of the ceil((n + 1) coverage)-th smallest; NaN, no
    interval, when there are fewer than `residuals_needed(coverage)`."""
    n = int(counts.sum())
    if n < residuals_needed(coverage):
        return math.nan
    rank = math.ceil((n + 1) * coverage)
    return float(EDGES[1:][np.searchsorted(np.cumsum(counts), rank)])


def bin_names(bins: Sequence[float] = PIXEL_BINS) -> list[str]:
    """The names of the bins of `bins` (lower edges, t/ha): "0-25", ..., "300+" for AGB; a
    signed quantity's (`CHANGE_BINS`) reads "< -100", "-100 to -50", ..., "-5 to 5",
    "5-20", ..., "50+", its first bin being open below."""
    names = [f"< {bins[1]:g}"] if bins[0] < 0 and len(bins) > 1 else []
    for lo, hi in zip(bins[len(names) :], bins[len(names) + 1 :], strict=False):
        names.append(f"{lo:g}{'-' if lo >= 0 else ' to '}{hi:g}")
    return [*names, f"{bins[-1]:g}+"]


def _note(
    counts: dict[str, int], coverage: float, path: Path | str, what: str, then: str
) -> str | None:
    """The warning naming which of `counts` (residuals per `what`, bin or block size, of
    the calibration file `path`) hold too few for `coverage`, and what `then` follows; None
    when none does; a one-line `DataError` when all do: that coverage cannot be given."""
    need = residuals_needed(coverage)
    short = {name: n for name, n in counts.items() if n < need}
    if len(short) == len(counts):
        raise DataError(
            f"{path}: `coverage` {coverage:g} needs at least {need:,} residuals per {what}, "
            f"and its {what}s hold at most {max(counts.values(), default=0):,}: lower "
            "`coverage`, or calibrate on more chips"
        )
    if not short:
        return None
    listed = ", ".join(f"{name} ({n:,})" for name, n in short.items())
    return (
        f"{path}: too few residuals for `coverage` {coverage:g} (it needs {need:,}) "
        f"in the {what}s {listed}: {then}"
    )


#: The command that makes a calibration of each kind.
_COMMANDS = {"stock": "agbm calibrate", "change": "agbm calibrate --change"}


@dataclass
class Calibration:
    """Residual histograms of a model on held-out chips: per pixel by bin of `bins`
    (`pixel[b]`: predicted AGB, or predicted change for a `kind` "change"), and of block
    means by side (`blocks[side]`), with what they belong to and what they measure
    (`residuals`, `kind`)."""

    checkpoints: list[str]
    tta: str
    pixel: list[list[int]]
    blocks: dict[str, list[int]]
    chips: int
    #: What the residuals are of (`RESIDUALS`).
    residuals: str = "pixels"
    #: What is calibrated (`KINDS`): a year's stocks, or the change between two years.
    kind: str = "stock"
    #: The pixel bins' lower edges, t/ha (`PIXEL_BINS`, `CHANGE_BINS`).
    bins: list[float] = field(default_factory=lambda: list(PIXEL_BINS))

    def pixel_quantiles(self, coverage: float) -> np.ndarray:
        """The half-width per bin of `bins` at `coverage`, t/ha (NaN: too few)."""
        return np.array([conformal_quantile(np.asarray(c), coverage) for c in self.pixel])

    def halfwidths(self, values: np.ndarray, coverage: float) -> np.ndarray:
        """Each of `values`' (predicted AGB or change, t/ha) half-width at `coverage`, its
        bin's; NaN where a value is (no data) or its bin has too few residuals."""
        width = self.pixel_quantiles(coverage)[bin_of(values, self.bins)]
        return np.where(np.isfinite(values), width, np.nan)

    def pixel_note(self, coverage: float, path: Path | str) -> str | None:
        """What a map's bounds at `coverage` cannot give: a warning line naming the bins of
        the calibration file `path` with too few residuals, whose pixels get no bounds (None
        when there is none); a one-line `DataError` when no bin has enough."""
        names = (f"{name} t/ha" for name in bin_names(self.bins))
        counts = dict(zip(names, (int(np.sum(c)) for c in self.pixel), strict=True))
        return _note(counts, coverage, path, "bin", "pixels predicted there get no bounds (NaN)")

    def bounds(self, pred: np.ndarray, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of a map `pred` (t/ha, NaN = no data) at `coverage`, low clamped at 0;
        NaN in the bins with too few residuals for it (`pixel_note`)."""
        width = self.halfwidths(pred, coverage)
        return np.maximum(pred - width, 0.0).astype(np.float32), (pred + width).astype(np.float32)

    def _enough(self, coverage: float) -> list[int]:
        """The sides of the blocks with enough residuals for `coverage`, ascending."""
        need = residuals_needed(coverage)
        return sorted(int(s) for s, c in self.blocks.items() if np.sum(c) >= need)

    def block_note(self, coverage: float, path: Path | str) -> str | None:
        """What totals' intervals at `coverage` cannot give: a warning line naming the
        blocks of the calibration file `path` with too few residuals (None when there is
        none); a one-line `DataError` when no block has enough."""
        counts = {f"{s} px": int(np.sum(c)) for s, c in self.blocks.items()}
        then = "zones of their size take the nearest smaller block that has them (wider)"
        return _note(counts, coverage, path, "block size", then)

    def block_quantile(self, side: int | str, coverage: float) -> float:
        """The half-width, t/ha, of the means of blocks of `side` px at `coverage`."""
        return conformal_quantile(np.asarray(self.blocks[str(side)]), coverage)

    def block_halfwidth(self, pixels: float, coverage: float) -> tuple[float, int]:
        """(half-width in t/ha of the mean over `pixels` mapped pixels (of `PIXEL_HA`) at
        `coverage`, the side of the block it comes from): the calibrated block nearest in
        area (log scale); an area beyond the largest block takes the largest block's, which
        is conservative as long as errors of means shrink with area, the more so the larger
        the zone. A block with too few residuals for `coverage` gives way to the nearest
        smaller one that has them (conservative alike); NaN when none has."""
        sides = [int(s) for s in self.blocks]
        side = min(sides, key=lambda s: abs(math.log(s * s) - math.log(max(pixels, 1.0))))
        if pixels > max(sides) ** 2:
            side = max(sides)
        smaller = [s for s in self._enough(coverage) if s <= side]
        if not smaller:
            return math.nan, side
        return self.block_quantile(smaller[-1], coverage), smaller[-1]

    def check(
        self, checkpoints: Sequence[str], tta: str, path: Path | str, *, of: str = ""
    ) -> None:
        """Refuse a map of other checkpoints (SHA-256) or another TTA, naming the calibration
        file `path` (and `of`, what the map is, when it is a file: "MAP's ")."""
        if list(checkpoints) != self.checkpoints or tta != self.tta:
            raise DataError(
                f"{path}: calibrated for checkpoints {[c[:12] for c in self.checkpoints]} with "
                f"TTA {self.tta}, not {of}{[c[:12] for c in checkpoints]} with TTA {tta}: "
                f"calibrate this model ({_COMMANDS[self.kind]})"
            )

    def write(self, path: Path | str) -> Path:
        """Write the calibration file `path` (atomically), in the last of `FORMATS`."""
        path = Path(path)
        with replacing(path) as tmp:
            tmp.write_text(json.dumps({"format": FORMATS[-1], **asdict(self)}))
        return path


def bin_of(pred: np.ndarray, bins: Sequence[float] = PIXEL_BINS) -> np.ndarray:
    """Each prediction's Mondrian bin (index into `bins`, lower edges); what is below the
    first edge, NaN too, goes to bin 0."""
    return np.clip(np.searchsorted(bins, np.nan_to_num(pred), side="right") - 1, 0, None)


def _histogram(residuals: np.ndarray) -> np.ndarray:
    """Counts of `residuals` over `EDGES`; those beyond the top are counted in the last bin."""
    return np.histogram(np.minimum(residuals, TOP - 1e-3), EDGES)[0]


def _trimmed(counts: np.ndarray) -> list[int]:
    """A histogram as the file holds it: a list, without its empty top."""
    return np.trim_zeros(counts, "b").tolist()


def _empty() -> np.ndarray:
    """A histogram of no residual."""
    return np.zeros(len(EDGES) - 1, np.int64)


@dataclass
class ResidualCounts:
    """The histograms of a calibration of `checkpoints` (SHA-256) with `tta` while they are
    counted, one chip at a time (`add`): per bin of `bins` (`pixel[b]`) and per block
    side (`blocks[side]`), in NumPy, with the `chips` counted, what the `residuals` are
    of (`RESIDUALS`) and what is calibrated (`kind`, `KINDS`). `to_calibration` makes the
    file's `Calibration` of them."""

    checkpoints: list[str]
    tta: str
    residuals: str = "pixels"
    kind: str = "stock"
    bins: Sequence[float] = PIXEL_BINS
    pixel: np.ndarray = field(init=False)
    blocks: dict[str, np.ndarray] = field(
        default_factory=lambda: {str(side): _empty() for side in BLOCK_SIDES}
    )
    chips: int = 0

    def __post_init__(self) -> None:
        """Refuse residuals or a calibration of an unknown kind (the file could not be read
        back), and start a histogram per bin."""
        if self.residuals not in RESIDUALS:
            raise ValueError(
                f"residuals must be one of {', '.join(RESIDUALS)}, not {self.residuals!r}"
            )
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        self.pixel = np.stack([_empty()] * len(self.bins))

    def add(self, pred: np.ndarray, residual: np.ndarray, blocks: Mapping[int, np.ndarray]) -> None:
        """Count one chip: the absolute `residual`s of its pixels (or footprints) in the
        histograms of their predictions' (`pred`, t/ha) bins, and the absolute errors of its
        block means in those of their sides (`blocks`: side -> errors)."""
        bins = bin_of(pred, self.bins)
        for b in range(len(self.bins)):
            self.pixel[b] += _histogram(residual[bins == b])
        for side, errors in blocks.items():
            self.blocks[str(side)] += _histogram(errors)
        self.chips += 1

    def counted(self) -> int:
        """How many residuals the pixel histograms hold."""
        return int(self.pixel.sum())

    def to_calibration(self) -> Calibration:
        """The `Calibration` of these counts, as the file holds it: each histogram a list
        without its empty top, and only the blocks that hold a residual."""
        blocks = {side: _trimmed(c) for side, c in self.blocks.items() if c.sum()}
        pixel = [_trimmed(c) for c in self.pixel]
        return Calibration(
            self.checkpoints, self.tta, pixel, blocks, self.chips, self.residuals, self.kind,
            [float(edge) for edge in self.bins],
        )  # fmt: skip


def _counts(value: object, name: str) -> list[int]:
    """A histogram of a calibration file, checked: a list of at most `len(EDGES) - 1` counts,
    whole numbers >= 0 (`name` says which, for the error)."""
    if not isinstance(value, list) or len(value) > len(EDGES) - 1:
        raise ValueError(f"{name} is not a list of at most {len(EDGES) - 1:,} counts")
    bad = [c for c in value if type(c) is not int or c < 0]  # type: bools are not counts
    if bad:
        raise ValueError(f"{name} holds {bad[0]!r}, not a count of residuals")
    return value


def _check_fields(data: dict) -> None:
    """The format, fields and labels of a calibration file's JSON `data` (without `format`
    when it returns), checked: a `ValueError` saying what is wrong."""
    if (given := data.pop("format", None)) not in FORMATS:
        raise ValueError(f"format {given!r}, not one of {', '.join(FORMATS)}")
    names = {f.name for f in fields(Calibration)}
    needed = {f.name for f in fields(Calibration) if MISSING is f.default is f.default_factory}
    if wrong := sorted(needed - data.keys()) or sorted(data.keys() - names):
        raise ValueError(f"missing or unknown field(s): {', '.join(wrong)}")
    checkpoints, tta, chips = data["checkpoints"], data["tta"], data["chips"]
    if not isinstance(checkpoints, list) or not all(isinstance(c, str) for c in checkpoints):
        raise ValueError("checkpoints is not a list of SHA-256 strings")
    if not isinstance(tta, str):
        raise ValueError(f"tta is {tta!r}, not a name")
    if type(chips) is not int or chips < 0:
        raise ValueError(f"chips is {chips!r}, not a count")
    if (residuals := data.get("residuals", "pixels")) not in RESIDUALS:
        raise ValueError(f"residuals is {residuals!r}, not {' or '.join(RESIDUALS)}")
    if (kind := data.get("kind", "stock")) not in KINDS:
        raise ValueError(f"kind is {kind!r}, not {' or '.join(KINDS)}")
    bins = data.get("bins", list(PIXEL_BINS))
    numbers = isinstance(bins, list) and all(type(b) in (int, float) for b in bins)
    if not numbers or not bins or not np.all(np.isfinite(bins)) or np.any(np.diff(bins) <= 0):
        raise ValueError(f"bins is {bins!r}, not the increasing lower edges of the bins")


def _check_histograms(pixel: object, blocks: object, bins: list[float], kind: str) -> None:
    """A calibration file's histograms, checked: one per bin of `bins` in `pixel` (of what
    the `kind` bins by), and in `blocks` one per side of some of `BLOCK_SIDES`; a
    `ValueError` saying what is wrong."""
    if not isinstance(pixel, list) or len(pixel) != len(bins):
        held = f"{len(pixel)} bins" if isinstance(pixel, list) else repr(pixel)
        raise ValueError(f"pixel holds {held}, not {len(bins)}, one per bin of {KINDS[kind]}")
    for name, counts in zip(bin_names(bins), pixel, strict=True):
        _counts(counts, f"the pixel bin of {name} t/ha")
    sides = [str(s) for s in BLOCK_SIDES]
    if not isinstance(blocks, dict) or not blocks or not set(blocks) <= set(sides):
        raise ValueError(f"blocks is not a map from some of the sides {', '.join(sides)} px")
    for side, counts in blocks.items():
        _counts(counts, f"the block of {side} px")


def _checked(data: object) -> Calibration:
    """The calibration a file's JSON `data` holds, each field checked (a hand-edited file):
    a `ValueError` saying what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    data = dict(data)
    _check_fields(data)
    bins = [float(b) for b in data.pop("bins", PIXEL_BINS)]
    _check_histograms(data["pixel"], data["blocks"], bins, data.get("kind", "stock"))
    return Calibration(**data, bins=bins)


#: What a calibration of each kind is given as (the parameter), and what it calibrates.
_GIVEN_AS = {
    "stock": ("calibration", f"the stocks of one year ({_COMMANDS['stock']})"),
    "change": ("change_calibration", f"the change between two years ({_COMMANDS['change']})"),
}


def read_calibration(path: Path | str, kind: str = "stock") -> Calibration:
    """A calibration file of `kind` (`KINDS`), checked field by field (it may have been
    edited by hand), or a one-line `DataError` naming it and what is wrong: a file of the
    other kind is refused, saying which parameter takes it."""
    path = Path(path)
    try:
        calibration = _checked(json.loads(path.read_text()))
    except FileNotFoundError:
        raise DataError(f"{path}: no such calibration file") from None
    except (OSError, ValueError) as exc:  # JSON's errors and the checks' (UnicodeError too)
        raise DataError(f"{path}: not an agbm calibration ({reason(exc)})") from None
    if calibration.kind != kind:
        given, what = _GIVEN_AS[calibration.kind]
        raise DataError(
            f"{path}: a calibration of {what}, not of {_GIVEN_AS[kind][1]}: give it as "
            f"`{given}`, and as `{_GIVEN_AS[kind][0]}` a calibration of its kind"
        )
    return calibration
