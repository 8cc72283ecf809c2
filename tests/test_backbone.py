"""Where θ's weights come from: a checkpoint file, the weights folder, the cache, or (only if
allowed, and loudly) a random initialisation."""
import pytest
import timm
import torch

from ulsad import backbone
from ulsad.backbone import WeightsUnavailable, create_body


@pytest.fixture
def offline(monkeypatch):
    """No Hugging Face cache and no network, as on the build machines."""
    monkeypatch.setattr(backbone, "_cached_hub_file", lambda name: None)
    monkeypatch.setattr(backbone, "_hub_reachable", lambda timeout=3.0: False)
    monkeypatch.delenv(backbone.WEIGHTS_DIR_ENV, raising=False)


@pytest.fixture
def checkpoint(tmp_path):
    """A full resnet18 state dict (with layer4 and fc) as torch.save writes it."""
    torch.manual_seed(1)
    state = timm.create_model("resnet18", pretrained=False).state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    return path, state


def test_a_checkpoint_file_is_loaded_tensor_for_tensor(checkpoint):
    path, state = checkpoint
    body, source = create_body("resnet18", ("layer2", "layer3"), weights=str(path))
    assert source == "file:resnet18.pth"
    for k, v in body.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_a_checkpoint_nested_under_state_dict_is_accepted(tmp_path, checkpoint):
    _, state = checkpoint
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "nested.pth")
    body, _ = create_body("resnet18", ("layer2", "layer3"), weights=str(tmp_path / "nested.pth"))
    assert torch.equal(body.state_dict()["conv1.weight"], state["conv1.weight"])


def test_the_weights_folder_environment_variable_is_used_for_imagenet(offline, monkeypatch, checkpoint):
    path, state = checkpoint
    monkeypatch.setenv(backbone.WEIGHTS_DIR_ENV, str(path.parent))
    body, source = create_body("resnet18", ("layer2", "layer3"))
    assert source == "file:resnet18.pth"
    assert torch.equal(body.state_dict()["layer3.1.conv2.weight"], state["layer3.1.conv2.weight"])


def test_no_weights_is_an_error_that_says_how_to_provide_them(offline):
    with pytest.raises(WeightsUnavailable, match="(?s)ULSAD_WEIGHTS_DIR.*allow_random_weights"):
        create_body("resnet18", ("layer2", "layer3"))


def test_random_weights_only_when_allowed_and_with_a_warning(offline):
    with pytest.warns(UserWarning, match="RANDOMLY INITIALISED resnet18"):
        _, source = create_body("resnet18", ("layer2", "layer3"), allow_random=True)
    assert source == "random"


def test_a_checkpoint_of_another_network_is_refused(tmp_path):
    torch.save(timm.create_model("resnet18").state_dict(), tmp_path / "r18.pth")
    with pytest.raises(ValueError, match="does not fit this backbone"):
        create_body("resnet50", ("layer2", "layer3"), weights=str(tmp_path / "r18.pth"))


@pytest.mark.parametrize("content,message", [(b"not a checkpoint", "could not read"), (None, "does not exist")])
def test_unreadable_or_missing_weights_files_are_named(tmp_path, content, message):
    path = tmp_path / "w.pth"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        create_body("resnet18", ("layer2",), weights=str(path))


def test_a_cached_hub_file_is_loaded_without_network(monkeypatch, tmp_path, checkpoint):
    path, state = checkpoint
    monkeypatch.setattr(backbone, "_cached_hub_file", lambda name: str(path))
    monkeypatch.setattr(backbone, "_hub_reachable", lambda timeout=3.0: pytest.fail("no network call"))
    monkeypatch.delenv(backbone.WEIGHTS_DIR_ENV, raising=False)
    body, source = create_body("resnet18", ("layer2", "layer3"))
    assert source == "imagenet"
    assert torch.equal(body.state_dict()["layer2.0.conv1.weight"], state["layer2.0.conv1.weight"])
