"""DuoRec: the loss is L_pred + lmd * InfoNCE with same-target rows masked as false negatives, each `contrast`
pairs its own two views, lmd 0 is SASRec bit for bit, bad settings fail with one line, and it trains in both
train_modes."""
import contextlib
import sys

import pytest
import torch
import torch.nn.functional as F
from recbole.data.interaction import Interaction
from recbole.utils import init_seed

from conftest import LEARN, TINY_YAML, assert_learned, tiny_config, train_tiny
from recbole_bt import ConfigError
from recbole_bt.data import data_preparation, partner_fields
from recbole_bt.loss import info_nce
from recbole_bt.model.duorec import DuoRec
from recbole_bt.model.sasrec import SASRec
from recbole_bt.quick_start import build_config, run_recbole_bt
from recbole_bt.data.loading import create_dataset
from recbole_bt.registry import package_models, register_model, unregister_model

TARGETS = [5, 5, 7, 9]  # rows 0 and 1 share their target: each is a false negative of the other


@pytest.fixture(autouse=True, scope="module")
def duorec_registered():
    """DuoRec findable by name (until recbole_bt.model exports it)."""
    if "DuoRec" in package_models():
        yield
        return
    register_model(DuoRec)
    yield
    unregister_model("DuoRec")


@pytest.fixture(scope="module")
def prepared(duorec_registered):
    """(config, training dataset) of DuoRec on tiny, prefix rows, built once for the module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["pytest"])  # RecBole's Config reads --key=value from the command line
        config = build_config("DuoRec", "tiny", [TINY_YAML], tiny_config(train_mode="prefix"))
        train_data, _, _ = data_preparation(config, create_dataset(config))
    return config, train_data._dataset


@contextlib.contextmanager
def options(config, **values):
    """`config` with `values` set for the duration of the block."""
    saved = {key: config[key] for key in values}
    for key, value in values.items():
        config[key] = value
    try:
        yield config
    finally:
        for key, value in saved.items():
            config[key] = value


def make_model(prepared, **values):
    config, dataset = prepared
    with options(config, **values):
        init_seed(config["seed"], config["reproducibility"])
        return DuoRec(config, dataset)


def hand_made_batch(config, targets=TARGETS):
    """4 rows (padded to MAX_ITEM_LIST_LENGTH), each with a partner sequence that differs from it."""
    rows = [[1, 2, 3, 4], [11, 12, 4], [21, 22, 23, 6], [8]][: len(targets)]
    partners = [[2, 3, 4], [13, 14, 15, 4], [24, 6], [7, 8]][: len(targets)]

    def padded(seqs):
        out = torch.zeros(len(seqs), config["MAX_ITEM_LIST_LENGTH"], dtype=torch.long)
        for i, seq in enumerate(seqs):
            out[i, : len(seq)] = torch.tensor(seq)
        return out, torch.tensor([len(s) for s in seqs])

    seq, length = padded(rows)
    p_seq, p_length = padded(partners)
    p_seq_field, p_len_field = partner_fields(config)
    return Interaction(
        {"item_id_list": seq, "item_length": length, "item_id": torch.tensor(targets),
         p_seq_field: p_seq, p_len_field: p_length}  # fmt: skip
    )


@pytest.mark.parametrize("sim", ["dot", "cos"])
def test_loss_masks_same_target_rows_as_false_negatives(prepared, sim):
    model = make_model(prepared, lmd=0.3, tau=0.5, sim=sim).eval()  # dropout off: every pass is deterministic
    batch = hand_made_batch(prepared[0])
    with torch.no_grad():
        z_row = model.forward(batch["item_id_list"], batch["item_length"])
        z_partner = model.forward(*(batch[f] for f in partner_fields(prepared[0])))
        ce = F.cross_entropy(z_row @ model.item_embedding.weight.T, batch["item_id"])
        masked = info_nce(z_row, z_partner, 0.5, sim, targets=torch.tensor(TARGETS))
        unmasked = info_nce(z_row, z_partner, 0.5, sim)
        loss = model.calculate_loss(batch)
    torch.testing.assert_close(loss, ce + 0.3 * masked)
    assert abs((loss - ce - 0.3 * unmasked).item()) > 1e-4  # the mask matters on this batch
    # distinct targets: nothing to mask, the same as the plain InfoNCE
    distinct = hand_made_batch(prepared[0], targets=[5, 6, 7, 9])
    with torch.no_grad():
        cl = model.contrastive_loss(distinct, model.forward(distinct["item_id_list"], distinct["item_length"]))
    torch.testing.assert_close(cl, unmasked)


@pytest.mark.parametrize(
    "contrast, views", [("us", ("output", "row")), ("su", ("output", "partner")), ("us_x", ("row", "partner"))]
)
def test_each_contrast_pairs_its_views(prepared, monkeypatch, contrast, views):
    model = make_model(prepared, contrast=contrast)
    batch = hand_made_batch(prepared[0])
    passes = []  # (sequences, output) of each forward pass the CL branch makes

    def forward(item_seq, item_seq_len):
        passes.append((item_seq, torch.randn(len(item_seq), model.hidden_size)))
        return passes[-1][1]

    monkeypatch.setattr(model, "forward", forward)
    output = torch.randn(len(TARGETS), model.hidden_size)  # the next-item loss's output of the rows

    def source(z):
        if z is output:
            return "output"
        (seq,) = [seq for seq, out in passes if out is z]  # a fresh pass (another dropout mask) of...
        if torch.equal(seq, batch["item_id_list"]):
            return "row"
        return "partner" if torch.equal(seq, batch[partner_fields(prepared[0])[0]]) else "?"

    z_i, z_j = model.contrastive_views(batch, output)
    assert (source(z_i), source(z_j)) == views


def test_dropout_view_is_another_dropout_mask(prepared):
    model = make_model(prepared, contrast="us").train()
    batch = hand_made_batch(prepared[0])
    output = model.forward(batch["item_id_list"], batch["item_length"])
    z_i, z_j = model.contrastive_views(batch, output)
    assert z_i is output and not torch.allclose(z_i, z_j)  # hidden/attn dropout 0.5: a different mask
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    output = model.forward(batch["item_id_list"], batch["item_length"])
    torch.testing.assert_close(model.contrastive_views(batch, output)[1], output)  # no dropout: the same view


def test_single_row_batch_has_no_contrastive_term(prepared):
    model = make_model(prepared, lmd=0.5).eval()
    batch = hand_made_batch(prepared[0], targets=[5])
    with torch.no_grad():
        output = model.forward(batch["item_id_list"], batch["item_length"])
        assert model.contrastive_loss(batch, output).item() == 0
        ce = F.cross_entropy(output @ model.item_embedding.weight.T, batch["item_id"])
        torch.testing.assert_close(model.calculate_loss(batch), ce)


@pytest.mark.parametrize("train_mode", ["prefix", "all_positions"])
def test_lmd_zero_is_sasrec_bit_for_bit(workdir, train_mode):
    ours = train_tiny(DuoRec, epochs=1, train_mode=train_mode, lmd=0.0)
    theirs = train_tiny(SASRec, epochs=1, train_mode=train_mode)
    assert ours[1] == theirs[1]
    assert ours[0].keys() == theirs[0].keys() and all(torch.equal(ours[0][k], theirs[0][k]) for k in ours[0])


@pytest.mark.parametrize(
    "values, message",
    [
        ({"lmd": -0.1}, r"'lmd' must be a finite number in \[0, inf\), got -0.1"),
        ({"lmd": "a lot"}, r"'lmd' must be a finite number in \[0, inf\), got 'a lot' \(str\)"),
        ({"tau": 0}, r"'tau' must be a finite number in \(0, inf\), got 0"),
        ({"sim": "l2"}, r"'sim' must be one of \['dot', 'cos'\]"),
        ({"contrast": "un"}, r"'contrast' must be one of \['us', 'su', 'us_x'\]"),
        ({"loss_type": "BPR"}, r"'loss_type' must be one of \['CE', 'BCE', 'SCE'\]"),
    ],
)
def test_bad_settings_fail_with_one_line(workdir, values, message):
    with pytest.raises(ConfigError, match=message) as error:  # the config's range table, before any data loads
        build_config("DuoRec", "tiny", [TINY_YAML], tiny_config(**values))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"train_mode": "prefix"},  # CE, us_x, dot: the defaults
        {"train_mode": "all_positions", "loss_type": "BCE", "contrast": "su", "sim": "cos", "tau": 0.5},
        {"train_mode": "all_positions", "contrast": "bad"},  # through run_recbole_bt: a one-line ConfigError
    ],
)
def test_trains_end_to_end(workdir, overrides):
    if overrides.get("contrast") == "bad":
        with pytest.raises(ConfigError, match="'contrast' must be one of"):
            run_recbole_bt("DuoRec", "tiny", [TINY_YAML], tiny_config(**overrides))
        return
    result = run_recbole_bt("DuoRec", "tiny", [TINY_YAML], tiny_config(**LEARN, **overrides))
    assert_learned(result)
