"""Sequence augmentations: exact outputs on hand-written batches with fixed seeds, the properties that hold for any
seed, purity (the inputs never change), reproducibility, and the Augmenter's per-row choice and config errors."""
import math
from collections import Counter

import pytest
import torch

from recbole_bt.data.augment import AUGMENTATIONS, Augmenter, crop, dropout, item_mask, reorder
from recbole_bt.errors import ConfigError

MASK = 99
SEQ = torch.tensor([[1, 2, 3, 4, 5, 0, 0], [6, 7, 8, 0, 0, 0, 0], [9, 0, 0, 0, 0, 0, 0]])
LEN = torch.tensor([5, 3, 1])


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def random_batch(rows=50, max_len=12, seed=1):
    """Left-aligned rows of lengths 1..max_len with distinct nonzero items per row (so positions are traceable)."""
    g = gen(seed)
    lengths = torch.randint(1, max_len + 1, (rows,), generator=g)
    items = torch.rand(rows, max_len, generator=g).argsort(dim=1) + 1  # distinct ids 1..max_len per row
    seq = items.masked_fill(torch.arange(max_len) >= lengths[:, None], 0)
    return seq, lengths


def call_pure(fn, seq, length, *args, **kwargs):
    """Call fn and check that it left its inputs bit-identical and returned fresh tensors."""
    seq_before, len_before = seq.clone(), length.clone()
    out_seq, out_len = fn(seq, length, *args, **kwargs)
    assert torch.equal(seq, seq_before) and torch.equal(length, len_before)
    assert out_seq.shape == seq.shape and out_len.shape == length.shape
    assert out_seq.dtype == seq.dtype and out_len.dtype == length.dtype
    assert out_seq.data_ptr() != seq.data_ptr() and out_len.data_ptr() != length.data_ptr()
    return out_seq, out_len


def check_mask_row(orig, n, out, out_n, rate):
    orig, out = orig.tolist(), out.tolist()
    assert out_n == n
    masked = [i for i in range(n) if out[i] == MASK]
    assert len(masked) == math.floor(rate * n)
    assert all(out[i] == orig[i] for i in range(n) if i not in masked)
    assert out[n:] == orig[n:] == [0] * (len(orig) - n)


def check_crop_row(orig, n, out, out_n, ratio):
    orig, out = orig.tolist(), out.tolist()
    k = max(1, math.floor(ratio * n))
    assert out_n == k
    assert out[k:] == [0] * (len(orig) - k)  # left-aligned, zero padding after the new length
    assert any(out[:k] == orig[start : start + k] for start in range(n - k + 1))  # a contiguous run of the original


def check_reorder_row(orig, n, out, out_n, ratio):
    orig, out = orig.tolist(), out.tolist()
    k = math.floor(ratio * n)
    assert out_n == n
    assert sorted(out[:n]) == sorted(orig[:n]) and out[n:] == orig[n:]
    changed = [i for i in range(n) if out[i] != orig[i]]
    if changed:  # every moved position lies in one window of k positions, and the window's items stay in it
        assert changed[-1] - changed[0] + 1 <= k
        start = min(changed[0], n - k)
        assert sorted(out[start : start + k]) == sorted(orig[start : start + k])


def check_rows(check, seq, length, out, out_len, rate):
    for row in range(len(seq)):
        check(seq[row], int(length[row]), out[row], int(out_len[row]), rate)


# ---------------------------------------------------------------- mask


def test_item_mask_by_hand():
    out, out_len = call_pure(item_mask, SEQ, LEN, 0.6, MASK, gen(0))
    assert out.tolist() == [[1, 2, MASK, MASK, MASK, 0, 0], [6, MASK, 8, 0, 0, 0, 0], [9, 0, 0, 0, 0, 0, 0]]
    assert out_len.tolist() == [5, 3, 1]
    check_rows(check_mask_row, SEQ, LEN, out, out_len, 0.6)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.3, 0.5, 0.7, 1.0])
def test_item_mask_properties_any_seed(rate):
    seq, length = random_batch()
    for seed in range(5):
        out, out_len = call_pure(item_mask, seq, length, rate, MASK, gen(seed))
        check_rows(check_mask_row, seq, length, out, out_len, rate)


def test_item_mask_edges():
    out, _ = call_pure(item_mask, SEQ, LEN, 0.0, MASK, gen(0))
    assert torch.equal(out, SEQ)
    out, _ = call_pure(item_mask, SEQ, LEN, 1.0, MASK, gen(0))
    assert out.tolist() == [[MASK] * 5 + [0, 0], [MASK] * 3 + [0] * 4, [MASK] + [0] * 6]


def test_item_mask_positions_are_uniform():
    """1 of 4 items masked: each position about a quarter of the time."""
    seq = torch.tensor([[1, 2, 3, 4, 0]]).repeat(4000, 1)
    out, _ = item_mask(seq, torch.full((4000,), 4), 0.25, MASK, gen(3))
    counts = (out == MASK).sum(0).tolist()
    assert counts[4] == 0 and sum(counts) == 4000
    assert all(850 < c < 1150 for c in counts[:4]), counts


# ---------------------------------------------------------------- crop


def test_crop_by_hand():
    out, out_len = call_pure(crop, SEQ, LEN, 0.6, gen(0))
    assert out.tolist() == [[3, 4, 5, 0, 0, 0, 0], [8, 0, 0, 0, 0, 0, 0], [9, 0, 0, 0, 0, 0, 0]]
    assert out_len.tolist() == [3, 1, 1]
    check_rows(check_crop_row, SEQ, LEN, out, out_len, 0.6)


@pytest.mark.parametrize("ratio", [0.01, 0.2, 0.5, 0.6, 0.9, 1.0])
def test_crop_properties_any_seed(ratio):
    seq, length = random_batch()
    for seed in range(5):
        out, out_len = call_pure(crop, seq, length, ratio, gen(seed))
        check_rows(check_crop_row, seq, length, out, out_len, ratio)


def test_crop_edges():
    out, out_len = call_pure(crop, SEQ, LEN, 1.0, gen(0))
    assert torch.equal(out, SEQ) and torch.equal(out_len, LEN)
    out, out_len = call_pure(crop, SEQ, LEN, 0.01, gen(0))  # k = max(1, 0): one item
    assert out_len.tolist() == [1, 1, 1] and (out[:, 1:] == 0).all()


def test_crop_offset_is_uniform():
    """3 of 5 items kept: offsets 0, 1, 2 about a third of the time each."""
    seq = torch.tensor([[1, 2, 3, 4, 5]]).repeat(3000, 1)
    out, _ = crop(seq, torch.full((3000,), 5), 0.6, gen(3))
    counts = Counter(out[:, 0].tolist())
    assert set(counts) == {1, 2, 3} and all(850 < c < 1150 for c in counts.values()), counts


# ---------------------------------------------------------------- reorder


def test_reorder_by_hand():
    out, out_len = call_pure(reorder, SEQ, LEN, 0.6, gen(0))
    assert out.tolist() == [[1, 2, 5, 3, 4, 0, 0], [6, 7, 8, 0, 0, 0, 0], [9, 0, 0, 0, 0, 0, 0]]
    assert out_len.tolist() == [5, 3, 1]  # row 2: k = floor(1.8) = 1, nothing to shuffle
    check_rows(check_reorder_row, SEQ, LEN, out, out_len, 0.6)
    out, _ = call_pure(reorder, SEQ, LEN, 1.0, gen(0))
    assert out.tolist() == [[5, 3, 1, 4, 2, 0, 0], [6, 7, 8, 0, 0, 0, 0], [9, 0, 0, 0, 0, 0, 0]]


@pytest.mark.parametrize("ratio", [0.0, 0.2, 0.5, 0.6, 0.9, 1.0])
def test_reorder_properties_any_seed(ratio):
    seq, length = random_batch()
    for seed in range(5):
        out, out_len = call_pure(reorder, seq, length, ratio, gen(seed))
        check_rows(check_reorder_row, seq, length, out, out_len, ratio)


def test_reorder_edges():
    out, _ = call_pure(reorder, SEQ, LEN, 0.0, gen(0))
    assert torch.equal(out, SEQ)


def test_reorder_permutation_is_uniform():
    """The whole row of 3 items shuffled: each of the 6 orders about a sixth of the time."""
    seq = torch.tensor([[1, 2, 3, 0]]).repeat(6000, 1)
    out, _ = reorder(seq, torch.full((6000,), 3), 1.0, gen(3))
    counts = Counter(tuple(row) for row in out[:, :3].tolist())
    assert len(counts) == 6 and all(850 < c < 1150 for c in counts.values()), counts
    assert (out[:, 3] == 0).all()


# ---------------------------------------------------------------- dropout, all ops


def test_dropout_is_a_copy():
    out, out_len = call_pure(dropout, SEQ, LEN)
    assert torch.equal(out, SEQ) and torch.equal(out_len, LEN)
    out[0, 0] = 42
    assert SEQ[0, 0] == 1


ALL_OPS = [
    ("mask", lambda s, n, g: item_mask(s, n, 0.5, MASK, g)),
    ("crop", lambda s, n, g: crop(s, n, 0.5, g)),
    ("reorder", lambda s, n, g: reorder(s, n, 0.5, g)),
]


@pytest.mark.parametrize("name,op", ALL_OPS)
def test_same_seed_same_output_other_seed_differs(name, op):
    seq, length = random_batch()
    first, second, other = op(seq, length, gen(7)), op(seq, length, gen(7)), op(seq, length, gen(8))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], other[0])


@pytest.mark.parametrize("name,op", ALL_OPS + [("dropout", lambda s, n, g: dropout(s, n, g))])
def test_all_rows_of_length_one(name, op):
    seq = torch.tensor([[4, 0, 0], [5, 0, 0], [6, 0, 0]])
    length = torch.ones(3, dtype=torch.long)
    out, out_len = call_pure(op, seq, length, gen(0))
    assert torch.equal(out, seq) and torch.equal(out_len, length)  # mask rate 0.5: floor(0.5) = 0 items


def test_functions_refuse_rates_out_of_range():
    with pytest.raises(ValueError, match=r"mask rate must be in \[0, 1\]"):
        item_mask(SEQ, LEN, 1.5, MASK, gen())
    with pytest.raises(ValueError, match=r"crop ratio must be in \(0, 1\]"):
        crop(SEQ, LEN, 0.0, gen())
    with pytest.raises(ValueError, match=r"reorder ratio must be in \[0, 1\]"):
        reorder(SEQ, LEN, -0.1, gen())
    assert set(AUGMENTATIONS) == {"mask", "crop", "reorder", "dropout"}


# ---------------------------------------------------------------- Augmenter


def test_augmenter_picks_each_op_and_matches_it_per_row():
    config = [{"crop": 0.6}, {"mask": 0.3}, {"reorder": 0.6}]
    augmenter = Augmenter(config, mask_id=MASK)
    assert augmenter.names == ["crop(0.6)", "mask(0.3)", "reorder(0.6)"]
    assert repr(augmenter) == "Augmenter([crop(0.6), mask(0.3), reorder(0.6)])"
    seq, length = random_batch(rows=300, max_len=15, seed=5)
    out, out_len = call_pure(augmenter, seq, length, gen(11))

    # the documented stream: choices first, then each op on the whole batch in list order
    g = gen(11)
    choice = torch.randint(3, (300,), generator=g)
    expected = [crop(seq, length, 0.6, g), item_mask(seq, length, 0.3, MASK, g), reorder(seq, length, 0.6, g)]
    counts = Counter(choice.tolist())
    assert all(70 < counts[i] < 130 for i in range(3)), counts
    checks = [(check_crop_row, 0.6), (check_mask_row, 0.3), (check_reorder_row, 0.6)]
    for row in range(300):
        op = int(choice[row])
        assert torch.equal(out[row], expected[op][0][row]) and out_len[row] == expected[op][1][row]
        check, rate = checks[op]
        check(seq[row], int(length[row]), out[row], int(out_len[row]), rate)
    # the choice is visible in the output: cropped rows got shorter, masked rows hold MASK
    assert (out_len < length).sum() > 0 and ((out == MASK).any(1)).sum() > 0

    again = augmenter(seq, length, gen(11))
    assert torch.equal(again[0], out) and torch.equal(again[1], out_len)
    assert not torch.equal(augmenter(seq, length, gen(12))[0], out)


def test_augmenter_with_dropout_and_length_one_rows():
    augmenter = Augmenter(["dropout", {"crop": 0.5}, {"mask": 0.3}, {"reorder": 1.0}], mask_id=MASK)
    seq = torch.tensor([[3, 0], [4, 0], [5, 0], [6, 0]])
    length = torch.ones(4, dtype=torch.long)
    out, out_len = call_pure(augmenter, seq, length, gen(0))
    assert torch.equal(out, seq) and torch.equal(out_len, length)
    only_dropout = Augmenter(["dropout"])
    out, out_len = call_pure(only_dropout, SEQ, LEN, gen(0))
    assert torch.equal(out, SEQ) and torch.equal(out_len, LEN)


def test_augmenter_accepts_integer_rates_and_needs_mask_id_for_mask():
    assert Augmenter([{"crop": 1}, {"reorder": 0}]).names == ["crop(1)", "reorder(0)"]
    with pytest.raises(ValueError, match="mask_id"):
        Augmenter([{"mask": 0.3}])


@pytest.mark.parametrize(
    "config,message",
    [
        ({"crop": 0.6}, r"augmentations must be a list"),
        ("crop", r"augmentations must be a list"),
        (None, r"augmentations must be a list"),
        ([], r"augmentations is empty; list at least one of: mask, crop, reorder, dropout"),
        (["shuffle"], r"unknown augmentation 'shuffle' in 'shuffle'; known: mask, crop, reorder, dropout"),
        ([{"crop": 0.6}, {"crops": 0.6}], r"unknown augmentation 'crops' in \{'crops': 0.6\}; known: mask, crop"),
        (["crop"], r"augmentation 'crop' needs a rate in \(0, 1\]"),
        (["mask"], r"augmentation 'mask' needs a rate in \[0, 1\]"),
        ([{"reorder": None}], r"augmentation 'reorder' needs a rate in \[0, 1\]"),
        ([{"dropout": 0.1}], r"augmentation 'dropout' takes no rate, got \{'dropout': 0.1\}"),
        ([{"crop": 0}], r"augmentation 'crop' rate must be a number in \(0, 1\], got \{'crop': 0\}"),
        ([{"crop": 1.2}], r"augmentation 'crop' rate must be a number in \(0, 1\]"),
        ([{"mask": -0.1}], r"augmentation 'mask' rate must be a number in \[0, 1\], got \{'mask': -0.1\}"),
        ([{"reorder": 1.5}], r"augmentation 'reorder' rate must be a number in \[0, 1\]"),
        ([{"mask": "0.3"}], r"augmentation 'mask' rate must be a number"),
        ([{"mask": True}], r"augmentation 'mask' rate must be a number"),
        ([{"crop": 0.6, "mask": 0.3}], r"must be a name or a one-key mapping name: rate"),
        ([0.6], r"augmentation entry 0.6 must be a name or a one-key mapping"),
    ],
)
def test_augmenter_config_errors(config, message):
    with pytest.raises(ConfigError, match=message) as error:
        Augmenter(config, mask_id=MASK)
    assert "\n" not in str(error.value)
