"""barlow_twins_loss: a 3x2 example worked out on paper, a numpy re-implementation, gradients, and the global
batch under torch.distributed (2 CPU processes on gloo)."""
import math
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from recbole_bt.loss import barlow_twins_loss, barlow_twins_terms, off_diagonal

# Unit rows, so the l2-normalisation leaves them as they are.
Z_A = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
Z_B = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])


def test_3x2_example_by_hand():
    # centred columns / their norms over the batch:
    #   A0 = [1, 0, -1] / sqrt(2)           A1 = [-1/3, 2/3, -1/3] / sqrt(2/3)
    #   B0 = [2/3, -1/3, -1/3] / sqrt(2/3)  B1 = [-2/3, 1/3, 1/3] / sqrt(2/3)
    # C00 = (2/3 + 1/3) / (sqrt(2) sqrt(2/3)) = sqrt(3)/2      C01 = (-2/3 - 1/3) / (2/sqrt(3)) = -sqrt(3)/2
    # C10 = (-2/9 - 2/9 + 1/9) / (2/3) = -1/2                  C11 = (2/9 + 2/9 - 1/9) / (2/3) = 1/2
    # on_diag = (1 - sqrt(3)/2)^2 + (1 - 1/2)^2 = 2 - sqrt(3);  off_diag = 3/4 + 1/4 = 1
    on_diag, off_diag = 2 - math.sqrt(3), 1.0
    loss = barlow_twins_loss(Z_A, Z_B, lambd=0.5)
    assert loss.item() == pytest.approx(on_diag + 0.5 * off_diag, rel=1e-5)
    assert barlow_twins_loss(Z_A, Z_B, lambd=0.5, scale="dim").item() == pytest.approx((on_diag + 0.5) / 2, rel=1e-5)
    assert barlow_twins_loss(Z_A, Z_B, lambd=0.0).item() == pytest.approx(on_diag, rel=1e-5)


def test_terms_of_the_3x2_example_by_hand():
    # the terms apart, as worked out above: C = [[sqrt(3)/2, -sqrt(3)/2], [-1/2, 1/2]]
    on_diag, off_diag, c = barlow_twins_terms(Z_A, Z_B)
    root3 = math.sqrt(3)
    assert torch.allclose(c, torch.tensor([[root3 / 2, -root3 / 2], [-0.5, 0.5]]), atol=1e-5)
    assert on_diag.item() == pytest.approx(2 - root3, rel=1e-5) and off_diag.item() == pytest.approx(1.0, rel=1e-5)


def test_other_3x2_example_is_pure_on_diagonal():
    # B = A with its second column negated: C = diag(1, -1), so on_diag = 0 + 2^2 = 4, off_diag = 0
    z_b = torch.tensor([[1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])
    assert barlow_twins_loss(Z_A, z_b, lambd=0.7).item() == pytest.approx(4.0, rel=1e-5)


def test_identical_views_have_no_on_diagonal_loss():
    z = torch.randn(32, 8)
    assert barlow_twins_loss(z, z, lambd=0.0).item() == pytest.approx(0.0, abs=1e-5)
    assert barlow_twins_loss(z, z.clone() * 3.0, lambd=0.0).item() == pytest.approx(0.0, abs=1e-5)  # scale-free


def numpy_barlow_twins(z_a, z_b, lambd, scale, eps=1e-6):
    z_a = z_a / np.linalg.norm(z_a, axis=1, keepdims=True)
    z_b = z_b / np.linalg.norm(z_b, axis=1, keepdims=True)
    z_a, z_b = z_a - z_a.mean(0), z_b - z_b.mean(0)
    c = (z_a.T @ z_b) / np.outer(np.sqrt((z_a**2).sum(0) + eps**2), np.sqrt((z_b**2).sum(0) + eps**2))
    loss = ((1 - np.diag(c)) ** 2).sum() + lambd * (c**2).sum() - lambd * (np.diag(c) ** 2).sum()
    return loss / c.shape[0] if scale == "dim" else loss


@pytest.mark.parametrize("scale", ["none", "dim"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_numpy_on_random_inputs(seed, scale):
    rng = np.random.default_rng(seed)
    z_a, z_b = rng.normal(size=(17, 6)), rng.normal(size=(17, 6))
    got = barlow_twins_loss(torch.from_numpy(z_a), torch.from_numpy(z_b), lambd=0.05, scale=scale)
    assert got.item() == pytest.approx(numpy_barlow_twins(z_a, z_b, 0.05, scale), rel=1e-9)


def test_gradients_reach_both_views_and_zero_variance_is_finite():
    z_a, z_b = torch.randn(8, 4, requires_grad=True), torch.randn(8, 4, requires_grad=True)
    barlow_twins_loss(z_a, z_b, lambd=0.05).backward()
    assert z_a.grad.abs().sum() > 0 and z_b.grad.abs().sum() > 0
    constant = torch.ones(8, 4, requires_grad=True)  # every column has zero variance: C = 0, loss = D
    loss = barlow_twins_loss(constant, z_b.detach(), lambd=0.05)
    loss.backward()
    assert loss.item() == pytest.approx(4.0) and torch.isfinite(constant.grad).all()


def test_off_diagonal():
    assert off_diagonal(torch.arange(9.0).view(3, 3)).tolist() == [1, 2, 3, 5, 6, 7]


@pytest.mark.parametrize(
    "args, message",
    [((torch.randn(1, 4), torch.randn(1, 4)), "at least 2 rows"), ((torch.randn(3, 4), torch.randn(3, 5)), r"\[B D\]")],
)
def test_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        barlow_twins_loss(*args, lambd=0.05)
    with pytest.raises(ValueError, match="bt_scale"):
        barlow_twins_loss(torch.randn(3, 4), torch.randn(3, 4), lambd=0.05, scale="batch")


def _rank(rank, world, port, z_a, z_b, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    rows = slice(rank * len(z_a) // world, (rank + 1) * len(z_a) // world)
    a, b = z_a[rows].clone().requires_grad_(), z_b[rows].clone().requires_grad_()
    loss = barlow_twins_loss(a, b, lambd=0.05, scale="dim")
    loss.backward()
    torch.save({"loss": loss.detach(), "grad_a": a.grad, "grad_b": b.grad}, os.path.join(out, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.spawns(several=True)
def test_two_processes_compute_the_loss_of_the_concatenated_batch(tmp_path):
    torch.manual_seed(0)
    z_a, z_b = torch.randn(12, 5, dtype=torch.float64), torch.randn(12, 5, dtype=torch.float64)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank, args=(2, port, z_a, z_b, str(tmp_path)), nprocs=2, join=True)

    a, b = z_a.clone().requires_grad_(), z_b.clone().requires_grad_()
    single = barlow_twins_loss(a, b, lambd=0.05, scale="dim")
    single.backward()
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for r, got in enumerate(ranks):
        torch.testing.assert_close(got["loss"], single.detach())
        # world x its rows' single-process gradient: DDP's average over the 2 ranks gives the single-process one
        torch.testing.assert_close(got["grad_a"], 2 * a.grad[r * 6:(r + 1) * 6])
        torch.testing.assert_close(got["grad_b"], 2 * b.grad[r * 6:(r + 1) * 6])
    # and a process that sees only its own half computes a different objective
    assert not torch.isclose(barlow_twins_loss(z_a[:6], z_b[:6], 0.05, "dim"), single.detach())
