"""Each loss of Sec. 3.2-3.4 against a plain loop over positions, as the equations read."""
import math

import pytest
import torch

from ulsad import losses

torch.manual_seed(0)
B, C, H, W = 2, 6, 3, 4


def loop_distance(a, b, lam):
    """(1/hw) Σ_k l_v(a_k, b_k) + λ l_d(a_k, b_k), per image, written out."""
    out = torch.zeros(a.shape[0], dtype=torch.float64)
    for i in range(a.shape[0]):
        for y in range(a.shape[2]):
            for x in range(a.shape[3]):
                u, v = a[i, :, y, x].double(), b[i, :, y, x].double()
                l_v = sum((u[c] - v[c]) ** 2 for c in range(len(u))) / len(u)
                cos = (u @ v) / (u.norm() * v.norm())
                out[i] += l_v + lam * (1 - cos)
    return out / (a.shape[2] * a.shape[3])


def loop_attention(z_query, z):
    """Eq. (3)/(4) with explicit sums: a_q = Σ_p softmax_p(z_p·q_q/√c) z_p. Rows are positions."""
    n, c = z.shape
    out = torch.zeros(n, c, dtype=torch.float64)
    for q in range(n):
        scores = [float(z[p].double() @ z_query[q].double()) / math.sqrt(c) for p in range(n)]
        top = max(scores)
        weights = [math.exp(s - top) for s in scores]
        total = sum(weights)
        for p in range(n):
            out[q] += weights[p] / total * z[p].double()
    return out


@pytest.fixture
def pair():
    return torch.randn(B, C, H, W), torch.randn(B, C, H, W)


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_L_pl_is_the_mean_of_value_plus_lambda_direction(pair, lam):
    a, b = pair
    assert losses.L_pl(a, b, lam).item() == pytest.approx(loop_distance(a, b, lam).mean().item(), rel=1e-5)


def test_L_lg_uses_lambda_g_the_same_way(pair):
    a, b = pair
    assert losses.L_lg(a, b, 0.5).item() == pytest.approx(loop_distance(a, b, 0.5).mean().item(), rel=1e-5)


def test_L_pg_direct_compares_features_without_attention(pair):
    a, b = pair
    assert losses.L_pg_direct(a, b, 0.3).item() == pytest.approx(loop_distance(a, b, 0.3).mean().item(), rel=1e-5)


def test_l_d_ignores_scale_and_l_v_does_not():
    a = torch.randn(1, C, 1, 1)
    assert losses.l_d(a, 3 * a).item() == pytest.approx(0, abs=1e-6)
    assert losses.l_v(a, 3 * a).item() > 0
    assert losses.l_d(a, -a).item() == pytest.approx(2, abs=1e-6)


def test_f_flattens_positions_into_rows_and_f_inv_undoes_it(pair):
    u, _ = pair
    z = losses.f(u)
    assert z.shape == (B, H * W, C)
    assert torch.equal(z[1, 1 * W + 2], u[1, :, 1, 2])
    assert torch.equal(losses.f_inv(z, H, W), u)


def test_self_attention_matches_eq3(pair):
    z = losses.f(pair[0])
    for i in range(B):
        assert torch.allclose(losses.self_attention(z)[i].double(), loop_attention(z[i], z[i]), atol=1e-5)


def test_cross_attention_takes_queries_from_the_autoencoder(pair):
    z, z_hat = losses.f(pair[0]), losses.f(pair[1])
    for i in range(B):
        assert torch.allclose(losses.cross_attention(z_hat, z)[i].double(), loop_attention(z_hat[i], z[i]), atol=1e-5)


def test_L_pg_compares_cross_and_self_attention_per_position(pair):
    z, z_hat = losses.f(pair[0]), losses.f(pair[1])
    expected = 0.0
    for i in range(B):
        a, a_hat = loop_attention(z[i], z[i]), loop_attention(z_hat[i], z[i])
        l_v = ((a_hat - a) ** 2).mean(1)
        l_d = 1 - torch.nn.functional.cosine_similarity(a_hat, a, dim=1)
        expected += (l_v + 0.5 * l_d).mean().item() / B
    assert losses.L_pg(z_hat, z, 0.5).item() == pytest.approx(expected, rel=1e-5)


def test_L_pg_is_zero_when_the_autoencoder_reproduces_the_teacher(pair):
    z = losses.f(pair[0])
    assert losses.L_pg(z, z, 0.5).item() == pytest.approx(0, abs=1e-6)


def test_L_pg_sends_no_gradient_to_the_teacher(pair):
    z = losses.f(pair[0]).requires_grad_()
    z_hat = losses.f(pair[1]).requires_grad_()
    losses.L_pg(z_hat, z.detach(), 0.5).backward()
    assert z_hat.grad is not None and z_hat.grad.abs().sum() > 0
    assert z.grad is None


@pytest.mark.parametrize("name", ["pg", "pg_direct"])
def test_each_global_loss_is_the_mean_of_its_per_position_residual(name):
    g = torch.Generator().manual_seed(3)
    u, u_hat = torch.randn(2, 8, 4, 4, generator=g), torch.randn(2, 8, 4, 4, generator=g)
    residual = losses.GLOBAL_TARGETS[name].residual(u_hat, u, 0.5)
    assert residual.shape == (2, 4, 4)
    if name == "pg":
        expected = losses.L_pg(losses.f(u_hat), losses.f(u), 0.5)
    else:
        expected = losses.L_pg_direct(u_hat, u, 0.5)
    assert residual.mean().item() == pytest.approx(expected.item(), rel=1e-5)


def test_the_terms_follow_the_configuration(smoke):
    from ulsad.detector import ULSAD

    detector = ULSAD(smoke).eval()
    out = detector(torch.rand(2, 3, 64, 64))
    full = losses.terms(out, smoke)
    assert full["total"].item() == pytest.approx((full["L_pl"] + full["L_pg"] + full["L_lg"]).item(), rel=1e-6)
    no_lg = losses.terms(out, smoke.replace(use_lg=False))
    assert no_lg["L_lg"].item() == 0 and no_lg["L_pg"].item() == full["L_pg"].item()


def test_l_v_floor_is_the_least_value_a_non_negative_output_reaches(pair):
    _, u = pair
    floor = losses.l_v_floor(u)
    assert torch.allclose(losses.l_v(u.clamp(min=0), u), floor)  # reached by ReLU(U)
    for _ in range(20):  # and by nothing non-negative below it
        a = torch.rand_like(u) * 3
        assert (losses.l_v(a, u) >= floor - 1e-6).all()
    assert torch.equal(losses.l_v_floor(u.abs()), torch.zeros_like(floor))  # non-negative targets: no floor
