"""The speed levers of issue 16 compute what the plain path computes: the chunked linear cross-entropy
(`fused_ce`), the fused attention (`fused_attention`), bf16 autocast (`precision`) and length bucketing
(`length_bucketing`) give the plain path's loss on a fixed batch within their dtype's tolerance, for every
SASRec-family model, and bucketing trains the same (window, position, target) triples per epoch."""
import collections

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from recbole.model.layers import MultiHeadAttention, TransformerEncoder
from recbole.utils import init_seed

from conftest import TINY_YAML, tiny_config
from recbole_bt import ConfigError
from recbole_bt.data import data_preparation
from recbole_bt.data.bucketing import LengthBucketSampler, length_bucketed_batches
from recbole_bt.loss import linear_cross_entropy
from recbole_bt.model import attention
from recbole_bt.model.attention import FusedMultiHeadAttention, drop_mask
from recbole_bt.quick_start import build_config, prepare
from recbole_bt.data.loading import create_dataset
from recbole_bt.registry import get_model
from recbole_bt.trainer import with_precision

FAMILY = ["SASRec", "BTSRec", "CL4SRec", "DuoRec", "CLUE", "BTPretrain", "DualEncoder"]
PLAIN = {"fused_attention": False, "fused_ce": False, "length_bucketing": False}
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attn_dropout_prob": 0.0}


# ------------------------------------------------------------------------------------------- loss
@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 1000])
def test_linear_cross_entropy_is_cross_entropy(chunk_rows):
    torch.manual_seed(0)
    hidden = torch.randn(50, 8, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(13, 8, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 13, (50,))
    expected = F.cross_entropy(hidden @ weight.T, targets)
    expected_grads = torch.autograd.grad(expected * 3, [hidden, weight])
    loss = linear_cross_entropy(hidden, weight, targets, chunk_rows)
    grads = torch.autograd.grad(loss * 3, [hidden, weight])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_linear_cross_entropy_by_hand():
    # one row, scores [0, ln 3] for items 0 and 1, target 0: CE = ln(1 + 3) = ln 4
    hidden = torch.tensor([[1.0]], requires_grad=True)
    weight = torch.tensor([[0.0], [float(np.log(3.0))]], requires_grad=True)
    loss = linear_cross_entropy(hidden, weight, torch.tensor([0]))
    loss.backward()
    assert loss.item() == pytest.approx(np.log(4.0))
    # d/dh = sum_j p_j w_j - w_0 = 3/4 ln 3; d/dw_0 = (1/4 - 1) h, d/dw_1 = 3/4 h
    assert hidden.grad.item() == pytest.approx(0.75 * np.log(3.0))
    torch.testing.assert_close(weight.grad, torch.tensor([[-0.75], [0.75]]))


def test_linear_cross_entropy_bf16_within_tolerance():
    torch.manual_seed(1)
    hidden, weight, targets = torch.randn(300, 16), torch.randn(500, 16) / 4, torch.randint(0, 500, (300,))
    expected = F.cross_entropy(hidden @ weight.T, targets)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = linear_cross_entropy(hidden, weight, targets)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected.item(), rel=1e-2)


def test_linear_cross_entropy_refuses_bad_shapes():
    with pytest.raises(ValueError, match="hidden \\[P H\\], weight \\[N H\\], targets \\[P\\]"):
        linear_cross_entropy(torch.zeros(3, 4), torch.zeros(5, 3), torch.zeros(3, dtype=torch.long))


# ------------------------------------------------------------------------------------------- attention
def _attention_pair(heads=2, hidden=8):
    torch.manual_seed(0)
    plain = MultiHeadAttention(heads, hidden, 0.0, 0.0, 1e-12).eval()
    fused = MultiHeadAttention(heads, hidden, 0.0, 0.0, 1e-12).eval()
    fused.load_state_dict(plain.state_dict())
    fused.__class__ = FusedMultiHeadAttention
    return plain, fused


def test_fused_attention_equals_recbole_at_real_positions():
    plain, fused = _attention_pair()
    lengths = torch.tensor([5, 2, 7])
    x = torch.randn(3, 7, 8)
    real = torch.arange(7)[None, :] < lengths[:, None]  # left-aligned rows, padding on the right
    mask = real[:, None, None, :] & torch.ones(7, 7, dtype=torch.bool).tril()
    expected = plain(x, torch.where(mask, 0.0, -10000.0))
    torch.testing.assert_close(fused(x, None)[real], expected[real], rtol=1e-5, atol=1e-5)
    # an explicit additive mask (CLUE's [UR] layout) is passed through: every position then matches
    torch.testing.assert_close(fused(x, torch.where(mask, 0.0, -10000.0)), expected, rtol=1e-5, atol=1e-5)


def test_fused_attention_dropout_drops_what_its_mask_says(monkeypatch):
    plain, fused = _attention_pair(heads=1)
    fused.attn_dropout.p = 0.5
    fused.train()
    x = torch.randn(2, 4, 8)
    drop = torch.rand(2, 4, 4) < 0.5  # [B*heads L L]
    monkeypatch.setattr(attention, "drop_mask", lambda shape, p, device: (drop, 2.0))
    q, k, v = plain.query(x), plain.key(x), plain.value(x)  # one head: [B L H]
    scores = (q @ k.transpose(1, 2) / np.sqrt(8)).masked_fill(torch.ones(4, 4, dtype=torch.bool).triu(1), -10000.0)
    probs = torch.softmax(scores, -1).masked_fill(drop, 0.0) * 2.0
    expected = plain.LayerNorm(plain.dense(probs @ v) + x)
    torch.testing.assert_close(fused(x, None), expected, rtol=1e-5, atol=1e-5)


def _fused_encoder(layers=2, heads=2, hidden=8):
    torch.manual_seed(0)
    encoder = TransformerEncoder(layers, heads, hidden, 16, 0.0, 0.0, "gelu", 1e-12)
    return attention.use_fused_layers(encoder).eval()


@pytest.mark.parametrize("explicit_mask", [False, True])
def test_encode_at_is_the_encoder_output_at_that_position(explicit_mask):
    """`encode_at` (last layer at one position per row) gives the full encoder's output there, and its gradients."""
    encoder = _fused_encoder()
    lengths = torch.tensor([5, 2, 7, 1])
    x = torch.randn(4, 7, 8, requires_grad=True)
    real = torch.arange(7)[None, :] < lengths[:, None]
    mask = torch.where(real[:, None, None, :] & torch.ones(7, 7, dtype=torch.bool).tril(), 0.0, -10000.0)
    mask = mask if explicit_mask else None  # None: causal (left-aligned rows)
    rows, index = torch.arange(4), lengths - 1
    full = encoder(x, mask, output_all_encoded_layers=True)[-1][rows, index]  # [B H]
    at = attention.encode_at(encoder, x, mask, index)  # [B H]
    torch.testing.assert_close(at, full, rtol=1e-5, atol=1e-5)
    weights = torch.randn(4, 8)
    grads = [torch.autograd.grad((out * weights).sum(), [x, *encoder.parameters()]) for out in (full, at)]
    for got, expected in zip(grads[1], grads[0]):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_forward_at_drops_what_its_mask_says(monkeypatch):
    """Attention dropout at one query per row: the full forward's row under the same dropped entries."""
    _, fused = _attention_pair(heads=1)
    fused.attn_dropout.p = 0.5
    fused.train()
    x, index = torch.randn(2, 4, 8), torch.tensor([3, 1])
    drop = torch.rand(2, 4, 4) < 0.5  # [B*heads L L]
    monkeypatch.setattr(attention, "drop_mask", lambda shape, p, device: (drop, 2.0))
    expected = fused(x, None)[torch.arange(2), index]  # [B H]
    monkeypatch.setattr(attention, "drop_mask", lambda shape, p, device: (drop[torch.arange(2), index].view(shape), 2.0))
    torch.testing.assert_close(fused.forward_at(x, None, index).squeeze(1), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_name", ["SASRec", "CLUE"])  # the last item's output; the [UR] token's
def test_fused_last_position_gives_the_same_representations(workdir, model_name):
    outputs = []
    for last_only in (False, True):
        config = build_config(get_model(model_name), "tiny", [TINY_YAML], tiny_config(
            MAX_ITEM_LIST_LENGTH=6, train_stage="finetune", seed=7, fused_last_position=last_only))  # fmt: skip
        assert config["fused_attention"]  # all_positions: the fused path
        init_seed(config["seed"], True)
        train_data, _, _ = data_preparation(config, create_dataset(config))
        init_seed(config["seed"], True)
        model = get_model(model_name)(config, train_data._dataset).eval()
        batch = train_data._dataset.inter_feat[:64]
        with torch.no_grad():
            outputs.append(model.forward(batch["item_id_list"], batch["item_length"]))
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)


def test_fused_last_position_follows_fused_attention(workdir):
    config = build_config(get_model("SASRec"), "tiny", [TINY_YAML], tiny_config(fused_attention=False))
    assert config["fused_last_position"] is False  # ~: off with the fused path, never an error
    with pytest.raises(ConfigError, match=r"^cannot build SASRec: fused_last_position needs fused_attention: True$"):
        prepare("SASRec", "tiny", [TINY_YAML], tiny_config(fused_attention=False, fused_last_position=True))


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5])
def test_drop_mask_rate_and_scale(p):
    drop, scale = drop_mask((1000, 1000), p, "cpu")
    assert drop.float().mean().item() == pytest.approx(p, abs=3e-3)
    assert scale == pytest.approx(1 / (1 - p), rel=1e-4)


# ------------------------------------------------------------------------------------------- each lever vs plain
class IdentityViews:
    """An `Augmenter` whose views are the sequences themselves."""

    def __call__(self, item_seq, item_seq_len, generator=None):
        return item_seq, item_seq_len

    def pair(self, item_seq, item_seq_len, generator=None):
        return (item_seq, item_seq_len), (item_seq, item_seq_len)


def _batch_loss(model_name, overrides, precision="fp32", batch_rows=None, same_views=False, train_mode="all_positions"):
    """Loss of the first training batch of `model_name` on tiny (windows of 5, stride 2), from the same seed.
    `same_views`: augmentations give each row itself (their random draws depend on the batch's width)."""
    config = build_config(get_model(model_name), "tiny", [TINY_YAML], tiny_config(
        train_mode=train_mode, MAX_ITEM_LIST_LENGTH=6, train_stride=3, train_batch_size=32, seed=7,
        **NO_DROPOUT, **overrides))  # fmt: skip
    init_seed(config["seed"], True)
    train_data, _, _ = data_preparation(config, create_dataset(config))
    init_seed(config["seed"], True)
    model = get_model(model_name)(config, train_data._dataset)
    if same_views and hasattr(model, "augmenter"):
        model.augmenter = IdentityViews()
    dataset = train_data._dataset
    rows = batch_rows if batch_rows is not None else np.arange(32)
    batch = train_data.collate_fn(rows.tolist())
    torch.manual_seed(3)
    loss = with_precision(model.calculate_loss, precision, "cpu")(batch)
    return loss.item(), dataset


@pytest.mark.parametrize("train_mode", ["all_positions", "prefix"])
@pytest.mark.parametrize("model_name", FAMILY)
@pytest.mark.parametrize("lever", ["fused_attention", "fused_ce", "bf16", "all"])
def test_each_lever_gives_the_plain_loss(workdir, model_name, lever, train_mode):
    plain, _ = _batch_loss(model_name, PLAIN, train_mode=train_mode)
    overrides = dict(PLAIN)
    if lever in ("fused_attention", "fused_ce"):
        overrides[lever] = True
    elif lever == "all":
        overrides = {"fused_attention": True, "fused_ce": True, "length_bucketing": False}
    precision = "bf16" if lever in ("bf16", "all") else "fp32"
    got, _ = _batch_loss(model_name, overrides, precision, train_mode=train_mode)
    # bf16: relative 1e-2; for a loss near 0 by cancellation (CLUE's SimSiam loss is a mean of -cos, terms of size
    # 1, here about -0.01), bfloat16's resolution of a term of size 1, 2^-8, absolute
    assert got == pytest.approx(plain, rel=1e-2, abs=2**-8) if precision == "bf16" else got == pytest.approx(plain, rel=1e-5)


@pytest.mark.parametrize("model_name", FAMILY)
def test_bucketed_batch_cut_to_its_longest_row_gives_the_plain_loss(workdir, model_name):
    """A batch of the bucketed loader (sequences cut to the longest row) has the loss of the same rows uncut (the
    augmentations of CL4SRec, CLUE and BTPretrain draw [B L] random numbers, so a cut batch gets other views of
    the same distribution: here they are switched off)."""
    _, dataset = _batch_loss(model_name, PLAIN)
    lengths = dataset.inter_feat[dataset.item_list_length_field].numpy()
    short = np.flatnonzero(lengths < lengths.max())[:16]  # rows shorter than MAX_ITEM_LIST_LENGTH: a cut happens
    assert len(short) >= 4
    plain, _ = _batch_loss(model_name, PLAIN, batch_rows=short, same_views=True)
    cut, _ = _batch_loss(model_name, dict(PLAIN, length_bucketing=True), batch_rows=short, same_views=True)
    assert cut == pytest.approx(plain, rel=1e-5)


@pytest.mark.parametrize("model_name", ["SASRec", "CLUE"])
def test_evaluation_by_length_gives_the_same_representations(workdir, model_name):
    """Outside training, `length_bucketing` runs rows in length-sorted chunks cut to their longest: same output."""
    outputs = []
    for bucketing in (False, True):
        config = build_config(get_model(model_name), "tiny", [TINY_YAML], tiny_config(
            train_mode="prefix", MAX_ITEM_LIST_LENGTH=6, train_stage="finetune", seed=7, length_bucketing=bucketing))  # fmt: skip
        init_seed(config["seed"], True)
        train_data, _, _ = data_preparation(config, create_dataset(config))
        init_seed(config["seed"], True)
        model = get_model(model_name)(config, train_data._dataset).eval()
        batch = train_data._dataset.inter_feat[:300]  # prefix rows: more than a chunk, of every length
        with torch.no_grad():
            outputs.append(model.forward(batch["item_id_list"], batch["item_length"]))
    assert len(set(batch["item_length"].tolist())) > 2 and len(batch) > 256
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------- bucketing
def test_length_bucketed_batches_partition_the_rows_and_group_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=1000)
    batches = length_bucketed_batches(lengths, 32, torch.Generator().manual_seed(0), pool_batches=8)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))  # every row exactly once
    assert [len(b) for b in batches[:-1]] == [32] * 31 and len(batches[-1]) == 1000 - 31 * 32  # short batch last
    padded = sum(len(b) * lengths[b].max() for b in batches)
    shuffled = np.random.default_rng(1).permutation(1000)
    padded_at_random = sum(len(b) * lengths[b].max() for b in np.array_split(shuffled, 32))
    assert padded / lengths.sum() < 1.2 < 1.6 < padded_at_random / lengths.sum()
    again = length_bucketed_batches(lengths, 32, torch.Generator().manual_seed(0), pool_batches=8)
    other = length_bucketed_batches(lengths, 32, torch.Generator().manual_seed(1), pool_batches=8)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other))


def test_length_bucketed_batches_for_ranks():
    lengths = np.arange(1, 101)
    batches = length_bucketed_batches(lengths, 16, torch.Generator().manual_seed(0), pad_to=3)
    assert len(batches) % 3 == 0 and all(len(b) == 16 for b in batches)
    assert set(np.concatenate(batches).tolist()) == set(range(100))  # every row, a few twice (padding)


def test_length_bucket_sampler_ranks_share_one_order():
    """Under DDP each rank takes every world-th batch of one order drawn from seed + epoch: together the ranks
    cover every row, as many batches each; the next epoch draws another order."""
    lengths = np.random.default_rng(0).integers(1, 50, size=203)
    ranks = [LengthBucketSampler(lengths, 16, None, seed=5, rank=r, world=2) for r in range(2)]
    epoch0 = [list(sampler) for sampler in ranks]
    assert len(epoch0[0]) == len(epoch0[1]) == len(ranks[0]) == 7 * 16
    assert set(epoch0[0]) | set(epoch0[1]) == set(range(203))
    for sampler in ranks:
        sampler.set_epoch(1)
    assert [list(sampler) for sampler in ranks] != epoch0


def _epoch_triples(loader):
    """The multiset of (user, window's items, position, target) of one epoch's training targets."""
    triples = collections.Counter()
    for batch in loader:
        seqs, targets, users = batch["item_id_list"], batch["target_item_id_list"], batch["user_id"]
        for row in range(len(users)):
            n = int(batch["item_length"][row])
            window = tuple(seqs[row, :n].tolist())
            for pos in torch.nonzero(targets[row]).flatten().tolist():
                triples[(int(users[row]), window, pos, int(targets[row, pos]))] += 1
    return triples


@pytest.mark.parametrize("model_name", ["SASRec", "BTSRec"])
def test_bucketing_trains_the_same_triples_per_epoch(workdir, model_name):
    def loader(bucketing):
        config = build_config(get_model(model_name), "tiny", [TINY_YAML], tiny_config(
            train_mode="all_positions", MAX_ITEM_LIST_LENGTH=6, train_stride=3, train_batch_size=8,
            length_bucketing=bucketing))  # fmt: skip
        return data_preparation(config, create_dataset(config))[0]

    plain, bucketed = loader(False), loader(True)
    assert type(bucketed).__name__.startswith("Bucketed")
    first, second = _epoch_triples(bucketed), _epoch_triples(bucketed)
    assert first == second == _epoch_triples(plain) and sum(first.values()) > 100
    widths = {b["item_id_list"].shape[1] for b in bucketed}
    assert len(widths) > 1  # batches cut to their longest row
    if model_name == "BTSRec":
        batch = next(iter(bucketed))
        assert batch["partner_item_id_list"].shape[1] == int(batch["partner_item_length"].max())


# ------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "key, value, message",
    [
        ("precision", "fp16", "'precision' must be one of ['fp32', 'bf16'], got 'fp16' (str)"),
        ("length_bucketing", "yes", "'length_bucketing' must be one of [True, False, ~], got 'yes' (str)"),
        ("fused_attention", 1, "'fused_attention' must be one of [True, False, ~], got 1"),
        ("fused_ce", [True], "'fused_ce' must be one of [True, False, ~], got [True] (list)"),
        ("fused_last_position", "no", "'fused_last_position' must be one of [True, False, ~], got 'no' (str)"),
    ],
)
def test_bad_speed_options_are_one_line(workdir, key, value, message):
    with pytest.raises(ConfigError) as e:
        build_config(get_model("BTSRec"), "tiny", [TINY_YAML], tiny_config(**{key: value}))
    assert str(e.value) == message
