"""Scalable Cross-Entropy: equal to full CE when the buckets hold everything, hand-checked otherwise."""
import pytest
import torch
import torch.nn.functional as F

from recbole_bt.loss import ScalableCrossEntropy, default_n_buckets, scalable_cross_entropy


@pytest.mark.parametrize("reduction", ["max", "union"])
def test_sce_with_buckets_holding_everything_is_full_cross_entropy(reduction):
    torch.manual_seed(0)
    hidden = torch.randn(6, 4, requires_grad=True)
    item_emb = torch.randn(9, 4, requires_grad=True)
    targets = torch.tensor([1, 2, 3, 3, 8, 0])
    sce = scalable_cross_entropy(hidden, targets, item_emb, n_buckets=3, bucket_size_x=6, bucket_size_y=9,
                                 reduction=reduction)  # fmt: skip
    ce = F.cross_entropy(hidden @ item_emb.T, targets)
    torch.testing.assert_close(sce, ce)  # pairs found by 3 buckets count once; positives are not negatives
    grads = torch.autograd.grad(sce, (hidden, item_emb))
    expected = torch.autograd.grad(ce, (hidden, item_emb))
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want)


def test_sce_union_by_hand_one_bucket():
    """One bucket of 2 hidden states x 2 items: the other row has no negatives, the positive is never one."""
    hidden = torch.tensor([[3.0, 0.0], [2.0, 1.0], [-1.0, 1.0]])
    item_emb = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [-1.0, 2.0]])
    targets = torch.tensor([2, 1, 3])
    generator = torch.Generator().manual_seed(0)
    centre = torch.randn(1, 2, generator=generator)
    loss = scalable_cross_entropy(hidden, targets, item_emb, n_buckets=1, bucket_size_x=2, bucket_size_y=2,
                                  generator=torch.Generator().manual_seed(0), reduction="union")  # fmt: skip
    # recompute the bucket from the same centre, then the loss row by row on paper-sized numbers
    rows = torch.topk(centre @ hidden.T, 2).indices[0].tolist()
    items = torch.topk(centre @ item_emb.T, 2).indices[0].tolist()
    expected = []
    for r in range(3):
        pos = float(hidden[r] @ item_emb[targets[r]])
        negs = [float(hidden[r] @ item_emb[i]) for i in items if r in rows and i != targets[r]]
        expected.append(torch.logsumexp(torch.tensor([pos] + negs), 0) - pos)
    torch.testing.assert_close(loss, torch.stack(expected).mean())
    assert expected[[r for r in range(3) if r not in rows][0]] == 0  # a row in no bucket has no negatives


def test_sce_max_by_hand_two_buckets(monkeypatch):
    """Two buckets (centres given): a CE per (bucket, row), a row's largest, the mean over the rows in a bucket."""
    hidden = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    item_emb = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    targets = torch.tensor([3, 3, 1])
    # centres (1, 0) and (0, 1): bucket 0 = rows {0, 1} (scores 1, 0), items {1, 3}; bucket 1 = rows {1, 0}, items {2, 3}
    monkeypatch.setattr(torch, "randn", lambda *args, **kwargs: torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    loss = scalable_cross_entropy(hidden, targets, item_emb, n_buckets=2, bucket_size_x=2, bucket_size_y=2)
    lse = lambda *x: float(torch.logsumexp(torch.tensor(x), 0))  # noqa: E731
    # row 0 (positive 3, score 1): bucket 0 negatives {1}: score 2; bucket 1 negatives {2}: score 0
    row0 = max(lse(1.0, 2.0) - 1.0, lse(1.0, 0.0) - 1.0)
    # row 1 (positive 3, score 1): bucket 0 negatives {1}: 0; bucket 1 negatives {2}: 2
    row1 = max(lse(1.0, 0.0) - 1.0, lse(1.0, 2.0) - 1.0)
    assert loss.item() == pytest.approx((row0 + row1) / 2)  # row 2 is in no bucket: not averaged in


def test_sce_memory_is_bucketed():
    """The logits tensor is n_buckets x bucket_size_x x bucket_size_y, whatever the catalogue size."""
    hidden, item_emb = torch.randn(64, 8), torch.randn(100_000, 8)
    targets = torch.randint(1, 100_000, (64,))
    loss = scalable_cross_entropy(hidden, targets, item_emb, bucket_size_y=32)
    assert torch.isfinite(loss) and default_n_buckets(64) == 16


@pytest.mark.parametrize(
    "kwargs, message",
    [({"bucket_size_y": 50}, "larger than the catalog"), ({"n_buckets": 0}, "n_buckets must be a positive integer"),
     ({"bucket_size_x": 2.5}, "bucket_size_x must be a positive integer")],
)
def test_sce_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ScalableCrossEntropy(n_items=40, **kwargs)


def test_sce_approaches_full_ce_as_buckets_grow():
    """Every row in every bucket: a row's negatives are the union of the buckets' top items, which grows with
    bucket_size_y (same centres), so SCE rises monotonically to full CE, which it never exceeds."""
    torch.manual_seed(1)
    hidden, item_emb = torch.randn(16, 8), torch.randn(200, 8)
    targets = torch.randint(0, 200, (16,))
    ce = F.cross_entropy(hidden @ item_emb.T, targets)
    losses = [
        scalable_cross_entropy(hidden, targets, item_emb, n_buckets=4, bucket_size_x=16, bucket_size_y=size,
                               generator=torch.Generator().manual_seed(0), reduction="union")  # fmt: skip
        for size in (2, 8, 32, 128, 200)
    ]
    assert all(a <= b + 1e-6 for a, b in zip(losses, losses[1:])) and losses[0] < ce - 0.5
    torch.testing.assert_close(losses[-1], ce)
