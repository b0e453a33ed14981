"""Losses as plain functions and modules, independent of any trainer.

- `barlow_twins_loss`: Barlow Twins (Zbontar et al., ICML 2021) in the form of BT-SR's Eq. 6 (Razvorotnev et al.
  2025): the cross-correlation matrix of two batches of embeddings, pushed towards the identity. Under
  torch.distributed its batch statistics and cross-correlation are those of the global batch; its two terms
  (invariance, redundancy) apart: `barlow_twins_terms`.
- `simsiam_loss`: SimSiam's symmetric negative cosine (Chen & He, CVPR 2021), as CLUE uses it (Cheng et al. 2021):
  ``D(p1, z2) / 2 + D(p2, z1) / 2`` with ``D(p, z) = -cos(p, stopgrad(z))``.
- `in_batch_logits` / `in_batch_softmax`: the dual encoder's sampled softmax with in-batch negatives (the other
  rows' targets), a row's own target masked where another row repeats it.
- `linear_cross_entropy`: full-catalog cross-entropy of hidden states against the item table, computed in
  chunks of rows with its gradient, so the [P N] logits never exist at once (the SASRec family's `fused_ce`).
- `scalable_cross_entropy` / `ScalableCrossEntropy`: Scalable Cross-Entropy (SCE), Mezentsev et al.,
  "Scalable Cross-Entropy Loss for Sequential Recommendations with Large Item Catalogs", RecSys 2024
  (arXiv 2409.18721): cross-entropy over the positive and the hard negatives that a cheap random-projection
  search finds, with memory O(n_buckets * bucket_size_x * bucket_size_y), never O(P * N).
"""
import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

BT_SCALES = ("none", "dim")


def off_diagonal(x):
    """The off-diagonal elements of a square matrix, flattened."""
    n, m = x.shape
    assert n == m
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


class _GlobalSum(torch.autograd.Function):
    """Sum over all ranks, with its adjoint as backward (the gradients summed over all ranks)."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def world_size():
    """Processes of torch.distributed (1 without it)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def global_sum(x):
    """`x` summed over the ranks of torch.distributed (itself in a single process); differentiable."""
    return _GlobalSum.apply(x) if world_size() > 1 else x


def _at_least_float32(x):
    """`x` in float32 if it is in a half-precision type (float64 stays float64)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _centred(z, n_rows):
    """The columns of z [B D] minus their (global) means. Rank 0's first row is subtracted first, which leaves
    the result unchanged but makes identical rows centre to exact zeros rather than to the rounding error of
    their mean (which the division by the column norm would blow up into a spurious correlation)."""
    first = z[:1].detach()  # [1 D]
    if world_size() > 1:
        first = global_sum(first if dist.get_rank() == 0 else torch.zeros_like(first))
    z = z - first
    return z - global_sum(z.sum(0)) / n_rows


def _column_norms(z, eps):
    """[D] norms over the (global) batch of the centred columns z [B D], as sqrt(sum z^2 + eps^2). A constant
    column (exact zeros) gets 1: its entries of C are 0 whatever the norm, and its gradient is then that of a
    unit-norm column, not 1/eps (which overflows float16)."""
    squares = global_sum((z**2).sum(0))  # [D]
    return torch.where(squares > 0, (squares + eps**2).sqrt(), torch.ones_like(squares))


def _cross_correlation(z_a, z_b, n_rows, eps, normalize_rows):
    """Steps 1-3 of `barlow_twins_loss`: the [D D] cross-correlation of the two views [B D]."""
    if normalize_rows:
        z_a, z_b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
    z_a, z_b = _centred(z_a, n_rows), _centred(z_b, n_rows)  # [B D]
    norm_a, norm_b = _column_norms(z_a, eps), _column_norms(z_b, eps)  # [D] each
    return global_sum(z_a.T @ z_b) / (norm_a[:, None] * norm_b[None, :])  # [D D]


def barlow_twins_terms(z_a, z_b, eps=1e-6, normalize_rows=True):
    """The two terms of the Barlow Twins loss of two views [B D] of the same B samples, and their matrix:
    (on_diag, off_diag, C), on_diag = sum_i (1 - C_ii)^2 (invariance), off_diag = sum_{i != j} C_ij^2 (redundancy),
    C the [D D] cross-correlation (steps 1-3 of `barlow_twins_loss`)."""
    if z_a.shape != z_b.shape or z_a.dim() != 2:
        raise ValueError(f"the two views must both be [B D], got {tuple(z_a.shape)} and {tuple(z_b.shape)}")
    n_rows = global_sum(torch.tensor(float(len(z_a)), device=z_a.device))
    if n_rows < 2:
        raise ValueError("Barlow Twins needs at least 2 rows in the batch (it standardises over the batch)")
    with torch.autocast(z_a.device.type, enabled=False):  # eps**2 is 0 in float16
        c = _cross_correlation(_at_least_float32(z_a), _at_least_float32(z_b), n_rows, eps, normalize_rows)
    on_diag = (1 - torch.diagonal(c)).pow(2).sum()
    off_diag = off_diagonal(c).pow(2).sum()
    return on_diag, off_diag, c


def barlow_twins_loss(z_a, z_b, lambd, scale="none", eps=1e-6, normalize_rows=True):
    """Barlow Twins loss of two views [B D] of the same B samples. Scalar.

    1. l2-normalise each row (BT-SR; `normalize_rows=False`: the original Barlow Twins, which batch-normalises
       the projector outputs only, i.e. steps 2-4);
    2. centre each dimension over the batch and divide it by its norm over the batch (BT-SR Eq. 6; `eps` guards
       zero-variance dimensions), so that C is exactly a correlation matrix, entries in [-1, 1];
    3. C = z_a^T z_b (D x D);
    4. on_diag = sum_i (1 - C_ii)^2, off_diag = sum_{i != j} C_ij^2, loss = on_diag + lambd * off_diag,
       divided by D with `scale='dim'` (the BT-SR reference code), as is with 'none' (the paper).
    Under torch.distributed, the means, norms and C are those of the batch of all ranks together, and DDP's
    average of the ranks' gradients is the single-process gradient of that batch.
    Degenerate batches stay finite, gradients included: a constant column, or all rows identical, centres to
    exact zeros (`_centred`) and contributes C = 0 with a bounded gradient (`_column_norms`); half-precision
    views are computed in float32.
    """
    if scale not in BT_SCALES:
        raise ValueError(f"bt_scale must be one of {list(BT_SCALES)}, got {scale!r}")
    on_diag, off_diag, c = barlow_twins_terms(z_a, z_b, eps, normalize_rows)
    loss = on_diag + lambd * off_diag
    loss = loss / c.shape[0] if scale == "dim" else loss
    # Under DDP every rank computes the same global loss, and backward through the all_reduces gives each rank
    # world * (the single-process gradient of its own rows); DDP's gradient average then yields the
    # single-process gradient of the whole batch.
    return loss


def negative_cosine(p, z, stop_gradient=True):
    """SimSiam's D(p, z) = -cos(p, z), averaged over the batch; z is a constant when `stop_gradient`. [B D] x2
    A zero row has cosine 0 (and a zero gradient); half-precision rows are compared in float32."""
    if stop_gradient:
        z = z.detach()
    return -F.cosine_similarity(_at_least_float32(p), _at_least_float32(z), dim=-1).mean()


def simsiam_loss(p1, p2, z1, z2, stop_gradient=True):
    """Symmetric SimSiam loss of two views: predictions p1, p2 and projections z1, z2, each [B D].

    -1 when each prediction points the way of the other view's projection; with `stop_gradient` no gradient
    flows into z1, z2 through this loss (SimSiam's Algorithm 1; CLUE's Eq. 8)."""
    return negative_cosine(p1, z2, stop_gradient) / 2 + negative_cosine(p2, z1, stop_gradient) / 2


def in_batch_logits(user, item, targets, temperature):
    """[B B] logits user_i . item_j / temperature of B users [B D] against the B rows' target items [B D]; where
    row j's target is row i's own (j != i), the entry is -inf: a repeated positive is not a negative."""
    logits = user @ item.T / temperature  # [B B]
    repeated = targets.unsqueeze(1) == targets.unsqueeze(0)  # [B B]
    repeated.fill_diagonal_(False)
    return logits.masked_fill(repeated, float("-inf"))


def in_batch_softmax(user, item, targets, temperature):
    """Cross-entropy of each row's own target (the diagonal) against the other rows' targets. Scalar."""
    logits = in_batch_logits(user, item, targets, temperature)
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))


def in_batch_softmax_positions(user, targets, item_table, temperature):
    """In-batch sampled softmax over every position of a batch: the user vectors [P H] of all positions against
    the batch's distinct targets (rows of `item_table` [U H], U <= P): each position's own target is its positive,
    the batch's other distinct targets its negatives, each once (a repeated target is one column, so never its own
    negative); mean over the P positions. The P x P form of `in_batch_softmax` would not fit (P ~ B x L)."""
    items, own = torch.unique(targets, return_inverse=True)  # [U], [P]
    return linear_cross_entropy(user / temperature, item_table(items), own)


SIMILARITIES = ("dot", "cos")


def info_nce(z_i, z_j, temperature, sim="dot", targets=None):
    """InfoNCE (NT-Xent) of CL4SRec and DuoRec over the 2B views z_i, z_j [B D]: each of the 2B rows is an anchor
    whose positive is its other view and whose negatives are the other 2B - 2 rows. With `targets` [B], rows that
    share the anchor's target (other than its positive) are masked out as false negatives (DuoRec). `sim`: 'dot'
    (dot product / temperature) or 'cos' (cosine / temperature). Mean over the 2B anchors; a scalar."""
    if sim not in SIMILARITIES:
        raise ValueError(f"Make sure 'sim' in {list(SIMILARITIES)}! (got {sim!r})")
    batch = len(z_i)
    z = torch.cat([z_i, z_j])  # [2B D]
    if sim == "cos":
        z = F.normalize(z, dim=-1)
    logits = z @ z.T / temperature  # [2B 2B]
    index = torch.arange(2 * batch, device=z.device)
    positive = (index + batch) % (2 * batch)  # row k's other view
    masked = index.unsqueeze(1) == index.unsqueeze(0)  # an anchor is not its own negative
    if targets is not None:
        t = torch.cat([targets, targets])  # [2B]
        masked = masked | ((t.unsqueeze(1) == t.unsqueeze(0)) & (positive.unsqueeze(1) != index.unsqueeze(0)))
    return F.cross_entropy(logits.masked_fill(masked, float("-inf")), positive)


def default_chunk_rows(n_items):
    """Rows per chunk of `linear_cross_entropy`: about 2 MiB of float32 logits (a chunk stays in cache), at least 64
    (on ML-1M's 3,706 items, 141 rows: 2.0x faster than the plain path at fp32, single thread; 64-256 rows are
    within 10% of each other, 1024 rows lose a third of the gain)."""
    return max(64, (1 << 19) // max(n_items, 1))


class _LinearCrossEntropy(torch.autograd.Function):
    """mean_p CE(hidden[p] @ weight^T, targets[p]); the gradients are computed in the forward pass, chunk by chunk,
    and only scaled in the backward pass: 3 matmuls per chunk as the plain path, and no [P N] tensor."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk_rows):
        n_rows = len(targets)
        needs_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        ctx.dtypes = (hidden.dtype, weight.dtype)
        exact = torch.promote_types(torch.promote_types(hidden.dtype, weight.dtype), torch.float32)  # >= float32
        device = hidden.device.type
        if torch.is_autocast_enabled(device):  # cast once here, not in each chunk's three matmuls
            low = torch.get_autocast_dtype(device)
            hidden, weight = hidden.to(low), weight.to(low)
        else:
            common = torch.promote_types(hidden.dtype, weight.dtype)
            hidden, weight = hidden.to(common), weight.to(common)
        loss = torch.zeros((), dtype=exact, device=hidden.device)
        grad_hidden = torch.empty_like(hidden, dtype=exact) if needs_grad else None  # [P H]
        grad_weight = torch.zeros_like(weight, dtype=exact) if needs_grad else None  # [N H]
        with torch.autocast(device, enabled=False):
            for start in range(0, n_rows, chunk_rows):
                h, t = hidden[start : start + chunk_rows], targets[start : start + chunk_rows]  # [c H], [c]
                logits = (h @ weight.T).to(exact)  # [c N] (bfloat16 matmul under autocast; softmax in float32)
                lse = torch.logsumexp(logits, dim=1)  # [c]
                loss += (lse - logits.gather(1, t.unsqueeze(1)).squeeze(1)).sum()
                if needs_grad:
                    probs = logits.sub_(lse.unsqueeze(1)).exp_()  # softmax [c N], in place
                    probs[torch.arange(len(t), device=t.device), t] -= 1.0  # n_rows * d CE / d logits
                    g = probs.to(h.dtype)
                    grad_hidden[start : start + chunk_rows] = g @ weight  # [c H]
                    grad_weight += (g.T @ h).to(exact)  # [N H]
        if needs_grad:  # the mean's 1 / n_rows, once on the [P H] and [N H] gradients
            ctx.save_for_backward(grad_hidden.div_(n_rows), grad_weight.div_(n_rows))
        return loss / n_rows

    @staticmethod
    def backward(ctx, grad_loss):
        grad_hidden, grad_weight = ctx.saved_tensors
        hidden_dtype, weight_dtype = ctx.dtypes
        return (grad_hidden * grad_loss).to(hidden_dtype), (grad_weight * grad_loss).to(weight_dtype), None, None


def linear_cross_entropy(hidden, weight, targets, chunk_rows=None):
    """Cross-entropy of the scores hidden [P H] @ weight [N H]^T against targets [P], averaged over the P rows, as
    `F.cross_entropy(hidden @ weight.T, targets)`, in chunks of `chunk_rows` rows (default: `default_chunk_rows`).
    Memory O(chunk_rows * N + (P + N) * H), never O(P * N); the logits are float32 whatever the matmul's dtype.
    No double backward."""
    if hidden.dim() != 2 or weight.dim() != 2 or hidden.shape[1] != weight.shape[1] or targets.shape != hidden.shape[:1]:
        raise ValueError(f"linear_cross_entropy takes hidden [P H], weight [N H], targets [P]; got "
                         f"{tuple(hidden.shape)}, {tuple(weight.shape)}, {tuple(targets.shape)}")  # fmt: skip
    if len(targets) == 0:
        return (hidden.sum() + weight.sum()) * 0.0 / 0.0  # nan, as F.cross_entropy of no rows
    return _LinearCrossEntropy.apply(hidden, weight, targets, chunk_rows or default_chunk_rows(len(weight)))


def default_n_buckets(n_positions):
    """The reference default for n_buckets and bucket_size_x: int(2 * sqrt(number of hidden states))."""
    return max(1, int(2 * math.sqrt(n_positions)))


SCE_REDUCTIONS = ("max", "union")


def scalable_cross_entropy(hidden, targets, item_emb, n_buckets=None, bucket_size_x=None, bucket_size_y=256,
                           mix_x=False, generator=None, reduction="max"):  # fmt: skip
    """SCE of hidden states [P D] against their target items [P] over the item embeddings [N D]. Scalar.

    1. Bucket centres [n_buckets D]: Gaussian (or, with `mix_x`, random Gaussian mixtures of the hidden states).
    2. Each bucket takes the `bucket_size_x` hidden states and the `bucket_size_y` items with the largest inner
       product with its centre (no gradient: a cheap maximum-inner-product search).
    3. Logits only for the (hidden, item) pairs inside a bucket; a row's positive item is masked among its
       negatives.
    4. `reduction='max'` (the SCE and BT-SR reference code): a cross-entropy over [positive, the bucket's
       negatives] per (bucket, row), the largest over the buckets a row falls in, averaged over the rows that
       fall in some bucket; dense [n_buckets bx by] tensors, no sort. `'union'`: one cross-entropy per row over
       the union of its buckets' negatives (a pair found by several buckets counts once: a sort of all the
       n_buckets * bx * by pairs, the slow part), rows in no bucket count as 0, averaged over all P rows.
    """
    if reduction not in SCE_REDUCTIONS:
        raise ValueError(f"sce_reduction must be one of {list(SCE_REDUCTIONS)}, got {reduction!r}")
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
    if reduction == "max":
        return _bucket_max_cross_entropy(logits, hidden, targets, item_emb, x_index, y_index)
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


def _bucket_max_cross_entropy(logits, hidden, targets, item_emb, x_index, y_index):
    """SCE's `reduction='max'` from the in-bucket logits [k bx by] of the rows x_index [k bx] and items y_index [k by]."""
    positive = (hidden * item_emb[targets]).sum(-1)  # [P]
    row_targets = targets[x_index]  # [k bx]
    negatives = logits.masked_fill(y_index.unsqueeze(1) == row_targets.unsqueeze(2), float("-inf"))  # [k bx by]
    bucket_positive = positive[x_index]  # [k bx]
    ce = torch.logaddexp(torch.logsumexp(negatives, dim=2), bucket_positive) - bucket_positive  # [k bx]
    per_row = torch.full_like(positive, float("-inf")).scatter_reduce(0, x_index.reshape(-1), ce.reshape(-1), "amax")
    return per_row[per_row > float("-inf")].mean()


class ScalableCrossEntropy(nn.Module):
    """`scalable_cross_entropy` with its parameters fixed at construction (`n_buckets`/`bucket_size_x` None:
    the reference default int(2 * sqrt(P)) for each batch of P hidden states)."""

    def __init__(self, n_items, n_buckets=None, bucket_size_x=None, bucket_size_y=256, mix_x=False, reduction="max"):
        super().__init__()
        if reduction not in SCE_REDUCTIONS:
            raise ValueError(f"sce_reduction must be one of {list(SCE_REDUCTIONS)}, got {reduction!r}")
        self.reduction = reduction
        for name, value in (("n_buckets", n_buckets), ("bucket_size_x", bucket_size_x), ("bucket_size_y", bucket_size_y)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"SCE {name} must be a positive integer, got {value!r}")
        if bucket_size_y > n_items:
            raise ValueError(f"SCE bucket_size_y={bucket_size_y} is larger than the catalog ({n_items} items)")
        self.n_buckets, self.bucket_size_x, self.bucket_size_y, self.mix_x = n_buckets, bucket_size_x, bucket_size_y, mix_x

    def forward(self, hidden, targets, item_emb):
        return scalable_cross_entropy(hidden, targets, item_emb, self.n_buckets, self.bucket_size_x,
                                      self.bucket_size_y, self.mix_x, reduction=self.reduction)  # fmt: skip
