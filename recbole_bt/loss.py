"""Losses as plain functions and modules, independent of any trainer.

- `scalable_cross_entropy` / `ScalableCrossEntropy`: Scalable Cross-Entropy (SCE), Mezentsev et al.,
  "Scalable Cross-Entropy Loss for Sequential Recommendations with Large Item Catalogs", RecSys 2024
  (arXiv 2409.18721): cross-entropy over the positive and the hard negatives that a cheap random-projection
  search finds, with memory O(n_buckets * bucket_size_x * bucket_size_y), never O(P * N).
"""
import math

import torch
from torch import nn


def default_n_buckets(n_positions):
    """The reference default for n_buckets and bucket_size_x: int(2 * sqrt(number of hidden states))."""
    return max(1, int(2 * math.sqrt(n_positions)))


def scalable_cross_entropy(hidden, targets, item_emb, n_buckets=None, bucket_size_x=None, bucket_size_y=256,
                           mix_x=False, generator=None):  # fmt: skip
    """SCE of hidden states [P D] against their target items [P] over the item embeddings [N D]. Scalar.

    1. Bucket centres [n_buckets D]: Gaussian (or, with `mix_x`, random Gaussian mixtures of the hidden states).
    2. Each bucket takes the `bucket_size_x` hidden states and the `bucket_size_y` items with the largest inner
       product with its centre (no gradient: a cheap maximum-inner-product search).
    3. Logits only for the (hidden, item) pairs inside a bucket; a row's positive item is masked among its
       negatives, and a pair found by several buckets counts once.
    4. Per row: cross-entropy over [positive, its in-bucket negatives]; rows in no bucket have no negatives
       (loss 0). Averaged over all P rows.
    """
    n_positions, dim = hidden.shape
    n_items = item_emb.shape[0]
    n_buckets = n_buckets or default_n_buckets(n_positions)
    bucket_size_x = min(bucket_size_x or default_n_buckets(n_positions), n_positions)
    bucket_size_y = min(bucket_size_y, n_items)

    with torch.no_grad():
        if mix_x:
            mix = torch.randn(n_buckets, n_positions, device=hidden.device, generator=generator)
            centres = mix @ hidden / math.sqrt(n_positions)  # [n_buckets D]
        else:
            centres = torch.randn(n_buckets, dim, device=hidden.device, generator=generator)
        x_index = torch.topk(centres @ hidden.T, bucket_size_x, dim=1).indices  # [n_buckets bx]
        y_index = torch.topk(centres @ item_emb.T, bucket_size_y, dim=1).indices  # [n_buckets by]

    logits = torch.einsum("kxd,kyd->kxy", hidden[x_index], item_emb[y_index])  # [n_buckets bx by]
    rows = x_index.unsqueeze(2).expand_as(logits).reshape(-1)
    items = y_index.unsqueeze(1).expand_as(logits).reshape(-1)
    logits = logits.reshape(-1)
    keep = items != targets[rows]  # the positive is not its own negative
    rows, items, logits = rows[keep], items[keep], logits[keep]
    pairs, first = torch.unique(rows * n_items + items, return_inverse=True)  # duplicates: same pair, same logit
    negatives = torch.full((len(pairs),), float("-inf"), device=hidden.device, dtype=logits.dtype)
    negatives = negatives.scatter_reduce(0, first, logits, reduce="amax")
    neg_rows = pairs // n_items

    positive = (hidden * item_emb[targets]).sum(-1)  # [P]
    row_max = positive.detach().clone().scatter_reduce(0, neg_rows, negatives.detach(), reduce="amax")
    sum_exp = torch.exp(positive - row_max).index_add(0, neg_rows, torch.exp(negatives - row_max[neg_rows]))
    return (torch.log(sum_exp) + row_max - positive).mean()


class ScalableCrossEntropy(nn.Module):
    """`scalable_cross_entropy` with its parameters fixed at construction (`n_buckets`/`bucket_size_x` None:
    the reference default int(2 * sqrt(P)) for each batch of P hidden states)."""

    def __init__(self, n_items, n_buckets=None, bucket_size_x=None, bucket_size_y=256, mix_x=False):
        super().__init__()
        for name, value in (("n_buckets", n_buckets), ("bucket_size_x", bucket_size_x), ("bucket_size_y", bucket_size_y)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"SCE {name} must be a positive integer, got {value!r}")
        if bucket_size_y > n_items:
            raise ValueError(f"SCE bucket_size_y={bucket_size_y} is larger than the catalog ({n_items} items)")
        self.n_buckets, self.bucket_size_x, self.bucket_size_y, self.mix_x = n_buckets, bucket_size_x, bucket_size_y, mix_x

    def forward(self, hidden, targets, item_emb):
        return scalable_cross_entropy(hidden, targets, item_emb, self.n_buckets, self.bucket_size_x,
                                      self.bucket_size_y, self.mix_x)  # fmt: skip
