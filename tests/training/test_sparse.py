"""The footprint loss and labels under augmentation."""

from __future__ import annotations

import math

import pytest
import torch

from agbm.labels.footprints import footprint_means_on_chip
from agbm.training.augment import Augment, Draw
from agbm.training.sparse import footprint_loss

#: A 6 x 6 prediction whose pixel (i, j) holds 10 i + j.
PRED = (torch.arange(6)[:, None] * 10 + torch.arange(6)[None, :]).float()[None, None]


def _labels(*rows: tuple[float, ...]) -> torch.Tensor:
    return torch.tensor([list(r) for r in rows], dtype=torch.float32)[None]


def test_a_footprint_mean_takes_each_pixel_by_the_share_of_the_disc_on_it() -> None:
    labels = _labels(
        (2.0, 2.0, 1.0, 0, 1),  # on the corner of pixels (1,1) (1,2) (2,1) (2,2): a quarter each
        (3.5, 2.0, 0.5, 0, 1),  # on the edge of (3,1) and (3,2): half each
        (4.5, 4.5, 0.3, 0, 1),  # inside pixel (4,4)
        (0.0, 0.0, 1.0, 0, 1),  # on the chip's corner: only pixel (0,0) is on the chip
        (math.nan,) * 5,  # padding
    )
    means = footprint_means_on_chip(PRED, labels)[0]
    expected = [(11 + 12 + 21 + 22) / 4, (31 + 32) / 2, 44.0, 0.0]
    torch.testing.assert_close(means[:4], torch.tensor(expected), atol=1e-4, rtol=0)
    assert math.isnan(means[4])


def test_no_data_pixels_take_no_part_in_a_footprint_mean_and_a_disc_wholly_on_them_is_nan() -> None:
    """Chip predictions are NaN where nothing was observed. A NaN in a disc's window but off
    the disc once made its mean NaN (NaN x weight 0); one under part of a disc now takes no
    part, as on a map (`footprint_means_on_map`)."""
    pred = PRED.clone()
    pred[0, 0, 4, 3] = math.nan  # beside pixel (4, 4), in the window of a disc on it
    pred[0, 0, 1, 1] = math.nan  # a quarter of the first disc of the first test
    labels = _labels((4.5, 4.5, 0.3, 0, 1), (4.5, 3.5, 0.3, 0, 1), (2.0, 2.0, 1.0, 0, 1))
    means = footprint_means_on_chip(pred, labels)[0]
    assert means[0] == pytest.approx(44.0) and math.isnan(means[1])
    assert means[2] == pytest.approx((12 + 21 + 22) / 3, abs=1e-4)


def test_the_footprint_loss_is_an_rmse_over_labels_weighted_and_shifted() -> None:
    labels = _labels((4.5, 4.5, 0.3, 40.0, 2.0), (1.5, 1.5, 0.3, 14.0, 1.0))
    # errors: 44 - 40 = 4 and 11 - 14 = -3
    assert footprint_loss(PRED, labels).item() == pytest.approx(math.sqrt((16 + 9) / 2), 1e-4)
    by_se = footprint_loss(PRED, labels, "se").item()  # weights 1/4 and 1
    assert by_se == pytest.approx(math.sqrt((16 / 4 + 9) / 1.25), 1e-4)
    # the best of the nine one-pixel shifts: for 40 the disc on pixel (4,3) = 43, 3 off; for
    # 14 on (1,2) = 12, 2 off
    shifted = footprint_loss(PRED, labels, shifts=True).item()
    assert shifted == pytest.approx(math.sqrt((3**2 + 2**2) / 2), 1e-4)


@pytest.mark.parametrize("turns", range(4))
@pytest.mark.parametrize("flips", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("degrees", [0.0, 30.0])
def test_labels_stay_on_their_pixels_under_every_flip_turn_and_rotation(
    turns: int, flips: tuple[bool, bool], degrees: float
) -> None:
    size = 64
    centre = (20.3, 41.7)  # the label; a bright bump on the target plane under it
    rows, cols = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    bump = torch.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / 8.0)
    augment = Augment(crop=48)
    draw = Draw(flips[0], flips[1], turns, degrees, torch.zeros(12, dtype=torch.bool), 5, 3,
                (0.05, -0.1))  # fmt: skip
    image = torch.zeros(1, 12, 15, size, size)
    _, _, moved_plane = augment(image, torch.ones(1, 12, dtype=torch.bool), bump[None, None],
                                [draw])  # fmt: skip
    labels = torch.tensor([[[*centre, 1.0, 50.0, 5.0]]])
    moved = augment.move_labels(labels, [draw], (size, size))[0, 0]
    peak = divmod(int(moved_plane[0, 0].argmax()), 48)
    assert abs(moved[0].item() - (peak[0] + 0.5)) <= 1.0
    assert abs(moved[1].item() - (peak[1] + 0.5)) <= 1.0
    assert moved[2:].tolist() == [1.0, 50.0, 5.0]


def test_a_label_moved_off_the_chip_becomes_padding() -> None:
    augment = Augment(crop=32)
    draw = Draw(False, False, 0, 0.0, torch.zeros(12, dtype=torch.bool), 0, 0)
    labels = torch.tensor([[[40.0, 10.0, 1.0, 50.0, 5.0], [10.0, 10.0, 1.0, 60.0, 5.0]]])
    moved = augment.move_labels(labels, [draw], (64, 64))[0]
    assert moved[0].isnan().all() and moved[1].tolist() == [10.0, 10.0, 1.0, 60.0, 5.0]
