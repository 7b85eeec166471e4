"""Input conventions: the winner's reader reproduced on its own chips, and each rule of both
sets checked on hand-made values."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from agbm.data import (
    AGBM_CONVENTIONS,
    WINNER_CONVENTIONS,
    InputConventions,
    list_chips,
    model_input,
    normalise,
    read_chip,
)
from tests.helpers import WINNER_FIXTURE

WINNER = WINNER_FIXTURE
needs_fixture = pytest.mark.skipif(not WINNER.is_dir(), reason="../shared/fixtures/winner absent")


@needs_fixture
def test_winner_conventions_reproduce_the_winners_reader_on_its_chips() -> None:
    """The per-(month, band) maxima of the normalised input equal those the winner's own
    reader gave (fixture summary.json, 6 digits), and the means agree to its float32
    summation error (up to 3e-5 over 65,536 pixels; any rule that differs moves a mean by
    1e-3 or more)."""
    summary = json.loads((WINNER / "expected" / "summary.json").read_text())
    data = WINNER / "data"
    assert list_chips(data, "test") == ["0c1a2b3d", "f00dcafe"]  # from the metadata CSV
    for chip in list_chips(data, "test"):
        image, _ = read_chip(data, chip, "test", WINNER_CONVENTIONS)
        means = image.astype(np.float64).mean(axis=(2, 3))
        np.testing.assert_allclose(means, summary[f"{chip} input mean [month][band]"], atol=5e-5)
        maxima = image.max(axis=(2, 3))
        np.testing.assert_allclose(maxima, summary[f"{chip} input max [month][band]"], atol=2e-6)
        assert image.max() > 1  # the winner clips nothing: some bands exceed 1
        agbm_image, _ = read_chip(data, chip, "test")
        assert not np.allclose(means, agbm_image.mean(axis=(2, 3)), atol=1e-3)


def month(s1: float, s2: int, cloud: int) -> tuple[torch.Tensor, ...]:
    """One month of one pixel as stored: S1 [1, 4, 1, 1], S2 [1, 11, 1, 1], acquired [2, 1]."""
    s1_t = torch.full((1, 4, 1, 1), s1, dtype=torch.float32)
    s2_t = torch.full((1, 11, 1, 1), s2, dtype=torch.int32)
    s2_t[0, -1] = cloud
    return s1_t, s2_t.to(torch.uint16), torch.ones(2, 1, dtype=torch.bool)


@pytest.mark.parametrize(
    ("conventions", "s1_band0", "b2", "cloud"),
    [
        # S1 -30 dB is below the band's minimum of -25; B2 20000 above its maximum 19616.
        (AGBM_CONVENTIONS, 0.0, 1.0, 0.4),
        (WINNER_CONVENTIONS, (-30 + 25) / 54, 20000 / 19616, 0.4),
    ],
)
def test_clamping_follows_the_conventions(
    conventions: InputConventions, s1_band0: float, b2: float, cloud: float
) -> None:
    image = normalise(*month(-30.0, 20000, 102), conventions)
    assert image[0, 0, 0, 0].item() == pytest.approx(s1_band0)
    assert image[0, 4, 0, 0].item() == pytest.approx(b2)
    assert image[0, 14, 0, 0].item() == pytest.approx(cloud)


def test_cloud_probability_255_is_no_data_for_agbm_and_one_for_the_winner() -> None:
    agbm = normalise(*month(0.0, 1000, 255), AGBM_CONVENTIONS)
    assert agbm[0, 4:].abs().sum().item() == 0  # the whole S2 pixel zeroed
    winner = normalise(*month(0.0, 1000, 255), WINNER_CONVENTIONS)
    assert winner[0, 14, 0, 0].item() == 1.0
    assert winner[0, 4, 0, 0].item() == pytest.approx(1000 / 19616)
    for conventions in (AGBM_CONVENTIONS, WINNER_CONVENTIONS):  # S1 no data is 0 for both
        assert normalise(*month(-9999.0, 0, 0), conventions)[0, :4].abs().sum().item() == 0


def test_absent_months_are_masked_for_agbm_and_attended_for_the_winner() -> None:
    present = torch.tensor([[True, False, True]])
    assert torch.equal(AGBM_CONVENTIONS.attended(present), present)
    assert WINNER_CONVENTIONS.attended(present).all()


def test_conventions_round_trip_through_plain_values_and_refuse_unknown_keys() -> None:
    stored = WINNER_CONVENTIONS.to_dict()
    assert all(isinstance(v, list | bool) for v in stored.values())  # weights_only-loadable
    assert InputConventions.from_config(stored) == WINNER_CONVENTIONS
    assert InputConventions.from_config("agbm") == AGBM_CONVENTIONS
    assert InputConventions.from_config({**stored, "s2_max": [1.0] * 11}).name == "custom"
    with pytest.raises(ValueError, match=r"unknown input convention\(s\) \['gamma'\]"):
        InputConventions.from_config({"gamma": 2})
    with pytest.raises(ValueError, match="unknown input conventions 'best'"):
        InputConventions.from_config("best")


def test_a_batch_without_any_month_is_refused_on_the_cpu_naming_its_chip() -> None:
    """The model no longer checks `present` on a GPU (a host sync every step): the batch is
    checked where it is made, before it goes to the device."""
    batch = {
        "s1": torch.zeros(2, 12, 4, 8, 8),
        "s2": torch.zeros(2, 12, 11, 8, 8, dtype=torch.uint16),
        "acquired": torch.zeros(2, 2, 12, dtype=torch.bool),
        "present": torch.tensor([[True] * 12, [False] * 12]),
        "chip_id": ["aaaa", "bbbb"],
    }
    with pytest.raises(ValueError, match=r"\['bbbb'\].*no month present"):
        model_input(batch, torch.device("cpu"), AGBM_CONVENTIONS)
    image, present = model_input(batch, torch.device("cpu"), WINNER_CONVENTIONS)
    assert present.all() and image.shape == (2, 12, 15, 8, 8)  # every month attended
