import pytest
import torch

from ferkit.models import count_params, create_model, list_models


@pytest.mark.parametrize("name", list_models())
def test_every_model_forward_backward(name):
    torch.manual_seed(0)
    m = create_model(name)
    x = torch.rand(3, 1, 48, 48) * 255
    y = m(x)
    assert y.shape == (3, 7)
    assert torch.isfinite(y).all()
    y.logsumexp(1).sum().backward()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    m.eval()
    with torch.no_grad():
        assert torch.allclose(m(x[:1]), m(x)[:1], atol=1e-4)  # eval is per-sample


def test_seed_is_the_original_design():
    m = create_model("seed")
    assert count_params(m) == 4_232_199
    convs = [l for l in m.modules() if isinstance(l, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128, 256, 512, 512]
    assert all(c.kernel_size == (3, 3) and c.padding == (0, 0) for c in convs)
    dense = [l for l in m.modules() if isinstance(l, torch.nn.Linear)]
    assert [d.out_features for d in dense] == [512, 256, 7]
    drops = [l.p for l in m.modules() if isinstance(l, torch.nn.Dropout)]
    assert drops == [0.4, 0.4, 0.4, 0.4, 0.4, 0.3]


def test_unknown_model_lists_names():
    with pytest.raises(ValueError, match="seed"):
        create_model("resnet9000")


def test_vggnet_inner_thins_the_first_conv_of_each_stage():
    """fernet_m(inner=...): conv A of each stage gets the given width, conv B keeps the stage's width."""
    m = create_model("fernet_m", inner=[32, 64, 128, 256])
    convs = [l for l in m.modules() if isinstance(l, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (1, 32), (32, 48), (48, 64), (64, 96), (96, 128), (128, 192), (192, 256), (256, 384)]
    assert count_params(m) < count_params(create_model("fernet_m"))
    assert create_model("fernet_m", inner=[48, 96, 192, 384]).state_dict().keys() == \
        create_model("fernet_m").state_dict().keys()
    with pytest.raises(ValueError):
        create_model("fernet_m", inner=[32, 64])  # one width per stage
