"""CL4SRec: the batch is never written by the augmentations, the two views of a sequence use distinct operations,
lmd 0 is SASRec bit for bit, the loss is L_pred + lmd * InfoNCE of the views, views are seeded, bad settings are
one-line errors, and it trains in both train_modes."""
import pytest
import torch

from conftest import LEARN, TINY_YAML, assert_learned, tiny_config, train_tiny
from recbole_bt import ConfigError
from recbole_bt.data.augment import Augmenter
from recbole_bt.loss import info_nce
from recbole_bt.model.cl4srec import CL4SRec
from recbole_bt.model.sasrec import SASRec
from recbole_bt.quick_start import prepare, run_recbole_bt
from recbole_bt.registry import package_models, register_model

if package_models().get("CL4SRec") is not CL4SRec:  # until recbole_bt.model exports it
    register_model(CL4SRec)

MASK_ID = 100


def ops_of(views, item_seq, item_seq_len):
    """Which of crop(0.5) / mask(1.0) / reorder(0.5) made each row of a view: mask writes [MASK] everywhere, crop
    shortens a row of n >= 2 items, reorder keeps its length and items."""
    seq, length = views
    masked = (seq == MASK_ID).any(1)
    cropped = length < item_seq_len
    return torch.where(masked, 1, torch.where(cropped, 0, 2))


def test_pair_uses_two_distinct_operations_per_row():
    g = torch.Generator().manual_seed(0)
    item_seq_len = torch.randint(2, 9, (300,), generator=g)
    item_seq = (torch.arange(8) < item_seq_len[:, None]) * torch.randint(1, MASK_ID, (300, 8), generator=g)
    before = item_seq.clone(), item_seq_len.clone()
    augmenter = Augmenter([{"crop": 0.5}, {"mask": 1.0}, {"reorder": 0.5}], mask_id=MASK_ID)
    view_1, view_2 = augmenter.pair(item_seq, item_seq_len, torch.Generator().manual_seed(1))
    assert torch.equal(before[0], item_seq) and torch.equal(before[1], item_seq_len)
    op_1, op_2 = ops_of(view_1, item_seq, item_seq_len), ops_of(view_2, item_seq, item_seq_len)
    first, second = augmenter.pair_choices(item_seq_len, torch.Generator().manual_seed(1))
    assert torch.equal(op_1, first) and torch.equal(op_2, second)  # the views are the drawn operations'
    assert (op_1 != op_2).all()
    assert len(set(zip(op_1.tolist(), op_2.tolist()))) == 6  # every ordered pair of distinct operations occurs


def test_pair_with_one_operation_uses_it_for_both_views():
    augmenter = Augmenter([{"mask": 0.5}], mask_id=MASK_ID)
    item_seq, item_seq_len = torch.arange(1, 41).view(4, 10), torch.full((4,), 10)
    (s1, l1), (s2, l2) = augmenter.pair(item_seq, item_seq_len, torch.Generator().manual_seed(0))
    assert ((s1 == MASK_ID).sum(1) == 5).all() and ((s2 == MASK_ID).sum(1) == 5).all()
    assert not torch.equal(s1, s2)  # each view with its own randomness


def test_calculate_loss_leaves_the_batch_bit_identical(workdir):
    _, train_data, _, _, trainer = prepare("CL4SRec", "tiny", [TINY_YAML], tiny_config(lmd=0.5, train_mode="prefix"))
    for batch in list(train_data)[:2]:
        before = {k: v.clone() for k, v in batch.interaction.items()}
        trainer.model.calculate_loss(batch).backward()
        assert before.keys() == batch.interaction.keys()
        assert all(torch.equal(before[k], batch[k]) for k in before)


def test_views_of_the_model_use_distinct_operations(workdir):
    config, train_data, *_ = prepare("CL4SRec", "tiny", [TINY_YAML], tiny_config(
        train_mode="prefix", augmentations=[{"crop": 0.5}, {"mask": 1.0}]))  # fmt: skip
    model = CL4SRec(config, train_data._dataset)
    batch = next(iter(train_data))
    (s1, l1), (s2, l2) = model.views(batch)
    masked_1 = (s1 == model.MASK_ID).any(1)
    masked_2 = (s2 == model.MASK_ID).any(1)
    assert (masked_1 ^ masked_2).all()  # exactly one view of every row is the masked one
    length = batch["item_length"]
    assert torch.equal(torch.where(masked_1, l1, l2), length)  # mask keeps the length
    crop_len = torch.where(masked_1, l2, l1)
    assert torch.equal(crop_len, torch.clamp(length // 2, min=1))  # crop 0.5 keeps floor(n / 2), at least 1


@pytest.mark.parametrize("train_mode", ["prefix", "all_positions"])
def test_lmd_zero_is_sasrec_bit_for_bit(workdir, train_mode):
    ours, theirs = train_tiny(CL4SRec, train_mode=train_mode, lmd=0), train_tiny(SASRec, train_mode=train_mode)
    assert ours[1] == theirs[1]  # losses, exactly
    assert ours[0].keys() == theirs[0].keys() and all(torch.equal(ours[0][k], theirs[0][k]) for k in ours[0])


def test_loss_is_prediction_plus_lmd_info_nce_of_the_views(workdir):
    config, train_data, *_ = prepare("CL4SRec", "tiny", [TINY_YAML], tiny_config(
        lmd=0.3, tau=0.5, sim="cos", train_mode="prefix"))  # fmt: skip
    model = CL4SRec(config, train_data._dataset).eval()  # dropout off: every pass is deterministic
    batch = next(iter(train_data))
    with torch.no_grad():
        loss = model.calculate_loss(batch)
        model._generator = None  # the same views again
        (s1, l1), (s2, l2) = model.views(batch)
        h = model.forward(batch["item_id_list"], batch["item_length"])
        logits = h @ model.item_embedding.weight[: model.n_items].T
        expected = torch.nn.functional.cross_entropy(logits, batch["item_id"]) + 0.3 * info_nce(
            model.forward(s1, l1), model.forward(s2, l2), 0.5, "cos"
        )
    torch.testing.assert_close(loss, expected)
    assert model.item_embedding.num_embeddings == model.n_items + 1
    assert model.full_sort_predict(batch).shape == (len(h), model.n_items)
    one_row = batch[torch.arange(1)]
    assert model.cl_loss(one_row).item() == 0  # a final batch of one row: no negatives


def test_views_are_seeded(workdir):
    config, train_data, *_ = prepare("CL4SRec", "tiny", [TINY_YAML], tiny_config(train_mode="prefix"))
    batch = next(iter(train_data))
    a, b = CL4SRec(config, train_data._dataset), CL4SRec(config, train_data._dataset)
    views_a, views_b = a.views(batch), b.views(batch)
    assert all(torch.equal(x, y) for view_a, view_b in zip(views_a, views_b) for x, y in zip(view_a, view_b))
    assert not torch.equal(a.views(batch)[0][0], views_a[0][0])  # the generator moves on
    config["seed"] = 7
    other = CL4SRec(config, train_data._dataset).views(batch)
    assert not all(torch.equal(x, y) for view_a, view_o in zip(views_a, other) for x, y in zip(view_a, view_o))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"lmd": -0.1}, r"'lmd' must be a finite number in \[0, inf\), got -0.1"),
        ({"lmd": "big"}, r"'lmd' must be a finite number in \[0, inf\), got 'big'"),
        ({"tau": 0}, r"'tau' must be a finite number in \(0, inf\), got 0"),
        ({"sim": "l2"}, r"'sim' must be one of \['dot', 'cos'\], got 'l2'"),
        ({"augmentations": [{"crop": 1.5}]}, "'augmentations': augmentation 'crop' rate"),
        ({"augmentations": []}, "'augmentations': augmentations is empty"),
        ({"augmentations": ["shuffle"]}, "'augmentations': unknown augmentation 'shuffle'"),
    ],
)
def test_bad_settings_are_one_line_errors(workdir, overrides, message):
    with pytest.raises(ConfigError, match=message) as error:
        run_recbole_bt("CL4SRec", "tiny", [TINY_YAML], tiny_config(**overrides))
    assert "\n" not in str(error.value)
    assert str(error.value).startswith(("cannot build CL4SRec", "'lmd'", "'tau'", "'sim'"))  # the range table


@pytest.mark.parametrize("overrides", [{"train_mode": "prefix"}, {"train_mode": "all_positions", "sim": "cos"}])
def test_trains_end_to_end(workdir, overrides):
    result = run_recbole_bt("CL4SRec", "tiny", [TINY_YAML], tiny_config(**LEARN, **overrides))
    assert_learned(result)
