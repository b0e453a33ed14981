"""BTPretrain and DualEncoder on the shared pretrain -> fine-tune pipeline: the Barlow Twins objective reaching
the identity on a toy problem, its original (batch-normalised) form, the dual encoder's in-batch logits and
mask by hand, and both models end to end."""
import glob
import math
import os

import numpy as np
import pytest
import torch

from conftest import LEARN, TINY_YAML, assert_learned, tiny_config
from recbole_bt import CheckpointError, ConfigError
from recbole_bt.loss import barlow_twins_loss, in_batch_logits, in_batch_softmax, in_batch_softmax_positions
from recbole_bt.quick_start import prepare, run_recbole_bt

SMALL = {"hidden_size": 8, "n_heads": 2, "inner_size": 16}


def _correlation(z_a, z_b):
    z_a = (z_a - z_a.mean(0)) / z_a.std(0, unbiased=False)
    z_b = (z_b - z_b.mean(0)) / z_b.std(0, unbiased=False)
    return z_a.T @ z_b / len(z_a)


def test_original_barlow_twins_form_equals_batchnorm_then_correlation():
    """normalize_rows=False is Zbontar et al.'s loss: batch-normalise each view, C = z_a^T z_b / B."""
    g = torch.Generator().manual_seed(0)
    z_a, z_b = torch.randn(32, 6, generator=g), torch.randn(32, 6, generator=g)
    c = _correlation(z_a.double(), z_b.double()).numpy()
    expected = ((1 - np.diag(c)) ** 2).sum() + 0.1 * (c**2).sum() - 0.1 * (np.diag(c) ** 2).sum()
    loss = barlow_twins_loss(z_a.double(), z_b.double(), 0.1, normalize_rows=False)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert barlow_twins_loss(z_a, z_b, 0.1).item() != pytest.approx(loss.item(), rel=1e-3)  # BT-SR's l2 rows differ


def test_barlow_twins_drives_the_cross_correlation_to_identity():
    """Two noisy views of 256 samples through one linear map to 4 dimensions: a few dozen Adam steps on the BT
    loss make C, which starts far from it, nearly the identity."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    view_a, view_b = x + 0.1 * torch.randn(256, 8, generator=g), x + 0.1 * torch.randn(256, 8, generator=g)
    encoder = torch.nn.Linear(8, 4)
    with torch.no_grad():
        encoder.weight.copy_(torch.randn(1, 8, generator=g).repeat(4, 1) + 0.01 * torch.randn(4, 8, generator=g))
    c_start = _correlation(encoder(view_a), encoder(view_b)).detach()
    optimizer = torch.optim.Adam(encoder.parameters(), lr=0.05)
    for _ in range(60):
        optimizer.zero_grad()
        barlow_twins_loss(encoder(view_a), encoder(view_b), 0.25, normalize_rows=False).backward()
        optimizer.step()
    c_end = _correlation(encoder(view_a), encoder(view_b)).detach()
    off = ~torch.eye(4, dtype=torch.bool)
    assert c_start[off].abs().min() > 0.9  # the four outputs start as copies of one another
    assert c_end.diagonal().min() > 0.95 and c_end[off].abs().max() < 0.1


def test_in_batch_logits_and_mask_by_hand():
    user = torch.tensor([[1.0, 0], [0, 1], [1, 1]])
    item = torch.tensor([[1.0, 0], [0, 2], [1, 0]])  # the rows' target embeddings
    targets = torch.tensor([5, 7, 5])  # rows 0 and 2 share their target: not each other's negative
    logits = in_batch_logits(user, item, targets, temperature=0.5)
    inf = float("-inf")
    assert logits.tolist() == [[2.0, 0.0, inf], [0.0, 4.0, 0.0], [inf, 4.0, 2.0]]
    expected = (
        -math.log(math.exp(2) / (math.exp(2) + 1))
        - math.log(math.exp(4) / (math.exp(4) + 2))
        - math.log(math.exp(2) / (math.exp(4) + math.exp(2)))
    ) / 3
    assert in_batch_softmax(user, item, targets, 0.5).item() == pytest.approx(expected, rel=1e-6)


def test_in_batch_softmax_of_every_position_by_hand():
    """A 2-window batch of 5 positions with targets: 2, 3, 4 (window 1) and 2, 6 (window 2, then padding). Each
    position is scored against the distinct targets {2, 3, 4, 6}: target 2, repeated, is one column."""
    table = torch.nn.Embedding(8, 2)
    with torch.no_grad():
        table.weight.copy_(torch.tensor([[0.0, 0], [0, 0], [1, 0], [0, 1], [1, 1], [0, 0], [-1, 0], [0, 0]]))
    user = torch.tensor([[1.0, 0], [0, 1], [1, 1], [2, 0], [0, -1]])
    targets = torch.tensor([2, 3, 4, 2, 6])
    items = {2: (1, 0), 3: (0, 1), 4: (1, 1), 6: (-1, 0)}
    temperature = 0.5
    expected = 0.0
    for u, t in zip(user.tolist(), targets.tolist()):
        scores = {i: (u[0] * e[0] + u[1] * e[1]) / temperature for i, e in items.items()}
        expected += -scores[t] + math.log(sum(math.exp(v) for v in scores.values()))
    loss = in_batch_softmax_positions(user, targets, table, temperature)
    assert loss.item() == pytest.approx(expected / 5, rel=1e-6)


def test_dual_encoder_learns_from_every_position_of_a_window(workdir):
    """All-positions windows: the loss is that of every position with a target (not only the last one's), so it
    changes when an early position's target changes."""
    _, train_data, _, _, trainer = prepare("DualEncoder", "tiny", [TINY_YAML],
                                           tiny_config(train_mode="all_positions", **SMALL))  # fmt: skip
    model, batch = trainer.model, next(iter(train_data))
    model.eval()  # no dropout: the loss is a function of the batch
    targets = batch[model.TARGET_LIST]
    mask = targets > 0
    user = model.encode(batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN])[mask]
    expected = in_batch_softmax_positions(user, targets[mask], model.item_embedding, model.temperature)
    assert model.pretrain_loss(batch).item() == pytest.approx(expected.item(), rel=1e-6)
    assert mask.sum() > len(targets)  # more positions than windows: more than one target per window
    first = mask.float().argmax(dim=1)  # each window's first position with a target
    changed = targets.clone()
    changed[0, first[0]] = 1 + changed[0, first[0]] % (model.n_items - 1)
    batch.update(type(batch)({model.TARGET_LIST: changed}))
    assert model.pretrain_loss(batch).item() != pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("model", ["BTPretrain", "DualEncoder"])
def test_pretrain_then_finetune(workdir, model):
    pretrained = run_recbole_bt(model, "tiny", [TINY_YAML], tiny_config(pretrain_epochs=2, **SMALL))["pretrain"]
    assert pretrained["epochs"] == 2 and math.isfinite(pretrained["pretrain_loss"])
    result = run_recbole_bt(model, "tiny", [TINY_YAML], tiny_config(
        train_stage="finetune", pre_model_path=pretrained["pretrained_model_file"], **SMALL, **LEARN))  # fmt: skip
    assert_learned(result)


def test_btpretrain_lambda_defaults_to_one_over_the_projector_size(workdir):
    _, _, _, _, trainer = prepare("BTPretrain", "tiny", [TINY_YAML], tiny_config(projector_sizes=[32, 16], **SMALL))
    assert trainer.model.lambd == 1 / 16


def test_btpretrain_finetunes_from_a_clue_checkpoint(workdir):
    """The pipeline's encoders are interchangeable: a CLUE checkpoint (user_token last) fine-tunes BTPretrain."""
    clue = run_recbole_bt("CLUE", "tiny", [TINY_YAML], tiny_config(pretrain_epochs=1, user_token="last", n_heads=2, hidden_size=8, inner_size=16))
    result = run_recbole_bt("BTPretrain", "tiny", [TINY_YAML], tiny_config(
        train_stage="finetune", pre_model_path=clue["pretrain"]["pretrained_model_file"], **SMALL, **LEARN))  # fmt: skip
    assert_learned(result)


@pytest.mark.parametrize("model", ["SASRec", "BTSRec"])
def test_sasrec_family_starts_from_a_pretrained_encoder(workdir, model, caplog):
    """pre_model_path given to a model without a pretraining stage: its encoder starts as the CLUE checkpoint's
    (the catalog's rows of the item table, which also holds [MASK] and [UR]), and the log lists what was loaded."""
    import logging

    clue = run_recbole_bt("CLUE", "tiny", [TINY_YAML], tiny_config(pretrain_epochs=1, **SMALL))
    path = clue["pretrain"]["pretrained_model_file"]
    saved = torch.load(path, weights_only=False)["state_dict"]
    with caplog.at_level(logging.INFO):
        _, _, _, _, trainer = prepare(model, "tiny", [TINY_YAML], tiny_config(pre_model_path=path, **SMALL))
    state = trainer.model.state_dict()
    n_items = len(state["item_embedding.weight"])
    assert len(saved["item_embedding.weight"]) == n_items + 2  # [MASK], [UR]
    assert torch.equal(state["item_embedding.weight"], saved["item_embedding.weight"][:n_items])
    assert torch.equal(state["trm_encoder.layer.0.feed_forward.dense_2.weight"], saved["trm_encoder.layer.0.feed_forward.dense_2.weight"])
    assert f"{model}: encoder initialised from {path} (CLUE): item_embedding.weight, position_embedding.weight" in caplog.text
    fresh = prepare(model, "tiny", [TINY_YAML], tiny_config(**SMALL))[4].model.state_dict()
    assert not torch.equal(fresh["item_embedding.weight"], state["item_embedding.weight"])


def test_model_without_an_encoder_to_load_refuses_pre_model_path(workdir):
    clue = run_recbole_bt("CLUE", "tiny", [TINY_YAML], tiny_config(pretrain_epochs=1, **SMALL))
    path = clue["pretrain"]["pretrained_model_file"]
    with pytest.raises(CheckpointError, match=r"GRU4Rec cannot start from pre_model_path '.*': only the SASRec "
                                              r"family .* read it") as info:  # fmt: skip
        prepare("GRU4Rec", "tiny", [TINY_YAML], tiny_config(pre_model_path=path, train_mode="prefix"))
    assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match=r"pre_model_path 'nowhere.pth' not found: pass the file"):
        prepare("SASRec", "tiny", [TINY_YAML], tiny_config(pre_model_path="nowhere.pth"))
    run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(epochs=1, checkpoint_dir="s"))
    [own] = glob.glob(os.path.join("s", "*.pth"))
    with pytest.raises(CheckpointError, match=r"cannot fine-tune SASRec from '.*': it holds a SASRec model, not a "
                                              r"pretrained sequence encoder"):  # fmt: skip
        prepare("SASRec", "tiny", [TINY_YAML], tiny_config(pre_model_path=own))


@pytest.mark.parametrize(
    "model, settings, message",
    [
        ("BTPretrain", {"lambda": -1}, r"'lambda' must be a finite number in \[0, inf\) or ~, got -1"),
        ("BTPretrain", {"bt_scale": "sum"}, "'bt_scale' must be one of"),
        ("BTPretrain", {"projector_sizes": []}, "'projector_sizes' must be a non-empty list"),
        ("DualEncoder", {"temperature": 0}, r"'temperature' must be a finite number in \(0, inf\), got 0"),
        ("BTPretrain", {"pretrain_min_delta": 1}, r"'pretrain_min_delta' must be a finite number in \[0, 1\), got 1"),
    ],
)
def test_bad_settings_are_one_line_errors(workdir, model, settings, message):
    with pytest.raises(ConfigError, match=message):
        prepare(model, "tiny", [TINY_YAML], tiny_config(**SMALL, **settings))


def test_plateau_step_by_hand():
    """min_delta d: an epoch improves only below the last improvement's loss by more than d of its size, so a loss
    falling 0.5% an epoch is stale against d = 1% until its falls add up; d = 0: every lower loss improves."""
    from recbole_bt.trainer import plateau_step

    losses = [10.0, 9.95, 9.89, 9.85, 9.80, 9.795]
    state = {"best_loss": math.inf, "reference": math.inf, "stale": 0}
    stale, references = [], []
    for loss in losses:
        plateau_step(state, loss, 0.01)
        stale.append(state["stale"])
        references.append(state["reference"])
    # 9.95 is not below 10 - 0.1; 9.89 is (ref 9.89); then 9.85, 9.80, 9.795 are not below 9.89 - 0.0989 = 9.7911
    assert stale == [0, 1, 0, 1, 2, 3] and references == [10.0, 10.0, 9.89, 9.89, 9.89, 9.89]
    assert state["best_loss"] == 9.795
    state = {"best_loss": math.inf, "reference": math.inf, "stale": 0}
    assert [plateau_step(state, loss)["stale"] for loss in losses] == [0] * 6
    state = {"best_loss": -0.9, "reference": -0.9, "stale": 0}  # a negative loss (SimSiam's): |reference|
    assert plateau_step(state, -0.905, 0.01)["stale"] == 1 and plateau_step(state, -0.91, 0.01)["stale"] == 0


def test_pretraining_stops_on_a_relative_plateau(workdir, caplog):
    """With learning rate 0 the BT loss only moves with the views' noise, never by half: the first epoch improves
    (nothing before it), the next two do not, and the log says so."""
    import logging

    settings = dict(SMALL, pretrain_epochs=50, pretrain_stopping_step=2, pretrain_min_delta=0.5, learning_rate=0.0)
    with caplog.at_level(logging.INFO):
        result = run_recbole_bt("BTPretrain", "tiny", [TINY_YAML], tiny_config(**settings))["pretrain"]
    assert result["epochs"] == 3 and result["stopped"].startswith("no loss 50% below ")
    assert "for 2 epochs (best" in result["stopped"] and f"pretraining stopped: {result['stopped']}" in caplog.text
