"""Shapes, gradients and input checks of θ, ψ and φ (Sec. 3.1-3.3, Tables 4-5)."""
import pytest
import torch

from ulsad import ULSAD, get_config, losses
from ulsad.backbone import reduce_channels
from ulsad.models import FRN, GlobalAutoencoder


@pytest.mark.parametrize("size", [256, 96, 64])
def test_global_autoencoder_maps_an_image_to_features_at_one_eighth(size):
    ae = GlobalAutoencoder(c_star=24, image_size=size, width=16)
    assert ae(torch.randn(2, 3, size, size)).shape == (2, 24, size // 8, size // 8)
    assert ae.encoder(torch.randn(2, 3, size, size)).shape[-2:] == (1, 1)  # one global code


def test_global_autoencoder_decoder_sizes_are_the_implementations_at_256():
    assert GlobalAutoencoder(384, 256).sizes == [3, 8, 15, 31, 63]


@pytest.mark.parametrize("c_star,hw", [(384, 32), (32, 8), (16, 12)])
def test_frn_returns_two_maps_of_c_star_channels(c_star, hw):
    u1, u2 = FRN(c_star)(torch.randn(2, c_star, hw, hw))
    assert u1.shape == u2.shape == (2, c_star, hw, hw)


def test_frn_widths_follow_table_4_for_c_star_384():
    convs = [m for m in FRN(384).modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0]) for m in convs] == [
        (384, 768, 3, 2), (768, 1536, 3, 2), (1536, 1536, 3, 1),
        (1536, 768, 4, 2), (768, 384, 4, 2), (384, 768, 5, 1)]


def test_frn_final_relu_is_a_switch():
    u1, _ = FRN(8, final_relu=True)(torch.randn(2, 8, 8, 8))
    assert (u1 >= 0).all()
    u1, _ = FRN(8, final_relu=False)(torch.randn(2, 8, 8, 8))
    assert (u1 < 0).any()


def test_channel_reduction_averages_consecutive_channels():
    u = torch.arange(8.0).view(1, 8, 1, 1).expand(1, 8, 2, 2)
    assert reduce_channels(u, 2)[0, :, 0, 0].tolist() == [1.5, 5.5]


def test_feature_extractor_fuses_layer2_and_layer3_at_stride_8(smoke):
    detector = ULSAD(smoke.replace(image_size=96))
    u = detector.raw_features(torch.rand(2, 3, 96, 96))
    assert u.shape == (2, smoke.c_star, 12, 12)
    assert detector.theta.in_channels == 40 + 112  # EfficientNet-Lite0's stride-8 and stride-16 stages


def test_paper_profile_extracts_384_channels_at_32_by_32():
    detector = ULSAD(get_config("paper", weights="random"))
    assert detector.theta.in_channels == 1536
    assert detector.raw_features(torch.rand(1, 3, 256, 256)).shape == (1, 384, 32, 32)


def test_gradients_reach_psi_and_phi_and_never_theta(smoke):
    detector = ULSAD(smoke).train()
    x = torch.rand(3, 3, 64, 64)
    losses.terms(detector(x), smoke)["total"].backward()
    assert all(p.grad is not None for p in detector.frn.parameters())
    assert all(p.grad is not None for p in detector.global_ae.parameters())
    assert all(p.grad is None and not p.requires_grad for p in detector.theta.parameters())


def test_theta_batchnorm_statistics_never_move_in_training_mode(smoke):
    detector = ULSAD(smoke).train()
    before = {k: v.clone() for k, v in detector.theta.state_dict().items()}
    detector.raw_features(torch.rand(2, 3, 64, 64) * 5)
    assert all(torch.equal(before[k], v) for k, v in detector.theta.state_dict().items())


def test_local_only_variant_has_no_global_network(smoke):
    detector = ULSAD(smoke.replace(global_loss="none", use_lg=False))
    assert detector.global_ae is None


@pytest.mark.parametrize("bad,message", [
    (torch.rand(2, 1, 64, 64), "B x 3 x 64 x 64"),
    (torch.rand(2, 3, 32, 32), "B x 3 x 64 x 64"),
    (torch.rand(3, 64, 64), "B x 3 x 64 x 64"),
    (torch.full((1, 3, 64, 64), float("nan")), "NaN"),
])
def test_bad_images_are_refused_with_the_expected_shape(smoke, bad, message):
    with pytest.raises(ValueError, match=message):
        ULSAD(smoke).check_images(bad)


@pytest.mark.parametrize("overrides,message", [
    (dict(image_size=32), "image_size=32"),
    (dict(image_size=100), "multiple of 32"),
    (dict(backbone="vgg16"), "backbone='vgg16'"),
    (dict(global_loss="attention"), "global_loss"),
    (dict(alpha=0.999), "alpha"),
    (dict(blur_kernel=4), "odd"),
    (dict(lambda_l=-1), "lambda_l"),
])
def test_bad_configuration_names_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        get_config("smoke", **overrides)


def test_unknown_profile_variant_or_field_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        get_config("fast")
    monkeypatch.setenv("ULSAD_PROFILE", "huge")
    with pytest.raises(ValueError, match="ULSAD_PROFILE"):
        get_config()
    with pytest.raises(ValueError, match="unknown variant"):
        get_config("smoke", variant="no_such")
    with pytest.raises(ValueError, match="unknown Config field"):
        get_config("smoke", epoch=3)


def test_one_forward_pass_gives_every_tensor_the_losses_and_maps_need(smoke):
    detector = ULSAD(smoke).eval()
    out = detector(torch.rand(2, 3, 64, 64))
    h = smoke.feature_size
    assert out.u.shape == out.u_tilde1.shape == out.u_tilde2.shape == out.u_hat.shape == (2, smoke.c_star, h, h)
    local_only = ULSAD(smoke.replace(global_loss="none", use_lg=False)).eval()
    assert local_only(torch.rand(2, 3, 64, 64)).u_hat is None


def test_cached_features_are_used_as_given(smoke):
    detector = ULSAD(smoke).eval()
    x, u = torch.rand(2, 3, 64, 64), torch.randn(2, smoke.c_star, smoke.feature_size, smoke.feature_size)
    assert torch.equal(detector(x, u).u, u)
