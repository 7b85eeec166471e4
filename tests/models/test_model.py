"""TemporalUNet: shapes, masking, month order, input checks, gradients, checkpoints, weights."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import huggingface_hub.constants
import pytest
import timm
import torch
from safetensors.torch import save_file

from agbm.errors import CheckpointError, PretrainedWeightsError
from agbm.models import TemporalUNet, build_model, load_model, save_model
from agbm.models import temporal as temporal_module

MONTHS = 4


def small_model(temporal: str = "attention", backbone: str = "resnet18") -> TemporalUNet:
    torch.manual_seed(0)
    return TemporalUNet(backbone, months=MONTHS, temporal=temporal).eval()


def inputs(batch: int = 2, size: int = 32, width: int | None = None):
    torch.manual_seed(1)
    image = torch.randn(batch, MONTHS, 15, size, width or size)
    present = torch.ones(batch, MONTHS, dtype=torch.bool)
    present[0, 1] = False
    return image, present


@torch.no_grad()
def run(model: TemporalUNet, image: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    return model(image, present)


@pytest.mark.parametrize(
    ("backbone", "height", "width"),
    [
        ("resnet18", 32, 32),
        ("resnet18", 64, 96),
        ("tf_efficientnetv2_b0", 64, 64),
        ("convnext_atto", 32, 64),  # first feature level at stride 4
    ],
)
def test_output_shape(backbone: str, height: int, width: int) -> None:
    image, present = inputs(size=height, width=width)
    out = run(small_model(backbone=backbone), image, present)
    assert out.shape == (2, 1, height, width)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("temporal", ["attention", "pool"])
def test_absent_months_are_ignored_and_present_ones_count(temporal: str) -> None:
    model = small_model(temporal)
    image, present = inputs()
    reference = run(model, image, present)

    changed = image.clone()
    changed[0, 1] = 1000.0 * torch.randn_like(changed[0, 1])  # month 1 of sample 0 is absent
    torch.testing.assert_close(run(model, changed, present), reference, rtol=1e-5, atol=1e-4)

    changed = image.clone()
    changed[0, 2] += 1.0  # present
    assert (run(model, changed, present)[0] - reference[0]).abs().max() > 1e-3


def test_month_order_matters_for_attention_only() -> None:
    image, present = inputs()
    order = torch.tensor([3, 2, 0, 1])
    for temporal, order_matters in [("attention", True), ("pool", False)]:
        model = small_model(temporal)
        reference = run(model, image, present)
        permuted = run(model, image[:, order], present[:, order])
        assert ((permuted - reference).abs().max() > 1e-3) == order_matters, temporal


def test_chunked_attention_matches_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    model = small_model()
    image, present = inputs()
    reference = run(model, image, present)
    monkeypatch.setattr(temporal_module, "_SDPA_MAX_BATCH", 100)  # 2*16*16 positions at stride 2
    torch.testing.assert_close(run(model, image, present), reference)


def test_channels_last_model_gives_the_same_output() -> None:
    model = small_model()
    image, present = inputs()
    reference = run(model, image, present)
    model = model.to(memory_format=torch.channels_last)
    torch.testing.assert_close(run(model, image, present), reference, rtol=1e-4, atol=1e-3)


def test_bf16_autocast_with_masked_months_is_finite() -> None:
    model = small_model()
    image, present = inputs()
    present[1] = torch.tensor([False, False, True, False])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = run(model, image, present)
    assert torch.isfinite(out).all()


def test_bad_inputs_raise_clear_errors() -> None:
    model = small_model("pool")
    image, present = inputs()
    no_month = present.clone()
    no_month[1] = False
    with pytest.raises(ValueError, match=r"sample\(s\) \[1\].*no month present"):
        model(image, no_month)
    with pytest.raises(ValueError, match="multiples of 32"):
        model(*inputs(size=48))
    with pytest.raises(ValueError, match="present must be a bool"):
        model(image, present[:, :3])
    with pytest.raises(ValueError, match="present must be a bool"):
        model(image, present.float())
    with pytest.raises(ValueError, match="expects 4 of 15"):
        model(image[:, :3], present[:, :3])
    with pytest.raises(ValueError, match="float"):
        model(image.long(), present)


def test_gradients_reach_the_first_encoder_layer() -> None:
    model = small_model().train()
    image, present = inputs()
    model(image, present).mean().backward()
    stem = model.encoder.conv1.weight
    assert stem.grad is not None and stem.grad.abs().sum() > 0
    embedding = model.temporal[0].month_embedding
    assert embedding.grad is not None and embedding.grad.abs().sum() > 0
    # DDP (without find_unused_parameters) needs every parameter in the graph
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = small_model("attention", "tf_efficientnetv2_b0")
    image, present = inputs()
    path = tmp_path / "model.pt"
    save_model(path, model)
    loaded = load_model(path).eval()
    assert loaded.config == model.config
    torch.testing.assert_close(
        run(loaded, image, present), run(model, image, present), rtol=0, atol=0
    )

    # a training checkpoint: the same two keys plus anything else
    torch.save({"model_config": model.config, "model": model.state_dict(), "epoch": 3}, path)
    assert isinstance(load_model(path), TemporalUNet)
    torch.save({"weights": model.state_dict()}, path)
    with pytest.raises(CheckpointError, match="not an agbm checkpoint"):
        load_model(path)
    with pytest.raises(ValueError, match=r"unknown model config key\(s\) \['epochs'\]"):
        save_model(path, model, {**model.config, "epochs": 3})
    save_model(path, model, model.config)
    assert load_model(path).config == model.config


def test_build_model_defaults_and_unknown_keys() -> None:
    model = build_model({"backbone": "resnet18", "months": MONTHS, "temporal": "pool"})
    assert model.config["decoder_channels"] == [384, 368, 352, 336, 320]
    with pytest.raises(ValueError, match="unknown model config key"):
        build_model({"backbone": "resnet18", "depth": 3})
    with pytest.raises(ValueError, match="temporal must be one of"):
        build_model({"backbone": "resnet18", "temporal": "lstm"})
    with pytest.raises(ValueError, match="unknown timm backbone"):
        build_model({"backbone": "no_such_net"})


def test_default_model_builds_with_expected_size() -> None:
    model = TemporalUNet()
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    assert count(model.encoder) == pytest.approx(116.4e6, rel=0.01)
    assert count(model) == pytest.approx(131.8e6, rel=0.01)
    assert model.encoder.conv_stem.in_channels == 15
    assert model.encoder.feature_info.reduction() == [2, 4, 8, 16, 32]


def test_missing_weights_file_raises_with_instructions_as_cli_flags() -> None:
    with pytest.raises(PretrainedWeightsError) as err:
        TemporalUNet("resnet18", pretrained="nonexistent/path")
    message = str(err.value)
    assert "set `pretrained` to PATH/model.safetensors, or to none for random" in message
    assert ".." not in message and "\n" not in message


def test_an_unreachable_hub_fails_at_once_without_retrying(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Offline, the hub client used to retry for ~51 s before the error."""

    def unreachable(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(socket, "create_connection", unreachable)
    start = time.perf_counter()
    with pytest.raises(PretrainedWeightsError, match="timm/resnet18.a1_in1k/resolve/main"):
        TemporalUNet("resnet18", pretrained=True)
    assert time.perf_counter() - start < 10
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False  # restored


def test_hub_weights_offline_fail_fast_with_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    # huggingface_hub reads HF_HUB_OFFLINE at import time, so patch the constant as well
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(PretrainedWeightsError, match="timm/resnet18.a1_in1k/resolve/main"):
        TemporalUNet("resnet18", pretrained=True)


def test_local_weights_file_loads_into_encoder_with_adapted_stem(tmp_path: Path) -> None:
    torch.manual_seed(2)
    source = timm.create_model("resnet18")  # the classification model, as on the hub
    path = tmp_path / "model.safetensors"
    save_file(source.state_dict(), path)
    model = TemporalUNet("resnet18", months=MONTHS, pretrained=path)
    assert model.config["pretrained"] == str(path)
    torch.testing.assert_close(model.encoder.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    # timm repeats the 3 RGB filters over 15 bands and scales them by 3/15
    torch.testing.assert_close(model.encoder.conv1.weight[:, :3] * 5, source.conv1.weight)

    bad = tmp_path / "bad.safetensors"
    save_file({"x": torch.zeros(1)}, bad)
    with pytest.raises(PretrainedWeightsError, match="missing from the file"):
        TemporalUNet("resnet18", pretrained=bad)


def test_the_forward_pass_compiles_whole_without_waiting_for_the_device() -> None:
    """The month check used to call `.tolist()` on `present` in every forward: a host sync
    each training step on a GPU, and a graph break under torch.compile (fullgraph fails)."""
    model = TemporalUNet("resnet18", decoder_channels=(16, 16, 16, 16, 16)).eval()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    image, present = torch.rand(2, 12, 15, 32, 32), torch.ones(2, 12, dtype=torch.bool)
    with torch.no_grad():
        assert torch.allclose(compiled(image, present), model(image, present), atol=1e-5)
