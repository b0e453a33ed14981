"""Numerical safety: the Barlow Twins and SimSiam losses stay finite (gradients too) on degenerate batches, a
non-finite training loss stops the run with a one-line message naming the loss term, and non-finite scores stop
an evaluation instead of being ranked (a NaN score compares false against everything and would rank first)."""
import re

import pytest
import torch

from conftest import TINY_YAML, tiny_config
from recbole_bt.data import data_preparation
from recbole_bt.errors import NonFiniteLossError, NonFiniteScoreError, RecBoleBTError
from recbole_bt.loss import barlow_twins_loss, simsiam_loss
from recbole_bt.model import BTSRec, SASRec
from recbole_bt.quick_start import build_config
from recbole_bt.data.loading import create_dataset
from recbole_bt.trainer import Trainer, non_finite_loss_message

NAN = float("nan")


# ---------------------------------------------------------------------------------------- degenerate batches
def _degenerate_batches():
    torch.manual_seed(0)
    a, b = torch.randn(8, 4), torch.randn(8, 4)
    constant_columns = a.clone()
    constant_columns[:, 1], constant_columns[:, 3] = 0.1, -2.0  # 0.1: its mean is not exact in floating point
    same = torch.randn(1, 4).repeat(8, 1)
    return {
        "constant columns": (constant_columns, b),
        "constant columns, both views": (constant_columns, constant_columns.clone()),
        "all rows identical": (same, same.clone()),
        "all rows identical, one view": (same, b),
        "all zeros": (torch.zeros(8, 4), torch.zeros(8, 4)),
        "batch of 2": (a[:2], b[:2]),
        "batch of 2, identical": (same[:2], same[:2].clone()),
    }


DEGENERATE = _degenerate_batches()


def _finite_with_gradients(loss_fn, *views):
    views = [v.clone().requires_grad_() for v in views]
    loss = loss_fn(*views)
    loss.backward()
    assert torch.isfinite(loss), loss
    for view in views:
        assert view.grad is None or torch.isfinite(view.grad).all()
    return loss.item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("normalize_rows", [True, False])
@pytest.mark.parametrize("case", list(DEGENERATE))
def test_barlow_twins_is_finite_on_degenerate_batches(case, normalize_rows, dtype):
    z_a, z_b = (z.to(dtype) for z in DEGENERATE[case])
    for scale in ("none", "dim"):
        loss = _finite_with_gradients(lambda x, y: barlow_twins_loss(x, y, 0.05, scale, normalize_rows=normalize_rows), z_a, z_b)
        assert 0 <= loss <= 4 * 2**2 + 0.05 * 12  # D = 4, |C_ij| <= 1


@pytest.mark.parametrize("normalize_rows", [True, False])
def test_identical_rows_are_uncorrelated_not_rounding_noise(normalize_rows):
    # all columns constant: C = 0 exactly, so L_BT = D (/ D with scale 'dim'); before, the rounding error of the
    # column means, divided by their tiny norms, read as a correlation (0.87 instead of 1 at 256 x 64)
    same = torch.randn(1, 64).repeat(256, 1)
    assert barlow_twins_loss(same, same, 0.05, "dim", normalize_rows=normalize_rows).item() == 1.0
    assert barlow_twins_loss(same, torch.randn(256, 64), 0.05, "none", normalize_rows=normalize_rows).item() == 64.0


def test_barlow_twins_in_half_precision_is_the_float32_value():
    torch.manual_seed(1)
    z_a, z_b = torch.randn(32, 8).half(), torch.randn(32, 8).half()
    half = barlow_twins_loss(z_a, z_b, 0.05, "dim")
    assert half.dtype == torch.float32
    assert half.item() == barlow_twins_loss(z_a.float(), z_b.float(), 0.05, "dim").item()


def test_losses_under_float16_autocast_are_finite():
    # a layer whose output has constant columns (identical input rows), under mixed precision: eps**2 was 0 in
    # float16, so sqrt(0) gave an infinite gradient and the loss a NaN one
    torch.manual_seed(3)
    layer = torch.nn.Linear(4, 4)
    with torch.autocast("cpu", dtype=torch.float16):
        z_a, z_b = layer(torch.randn(1, 4).repeat(8, 1)), layer(torch.randn(8, 4))
        loss = barlow_twins_loss(z_a, z_b, 0.05, "dim", normalize_rows=False) + simsiam_loss(z_a, z_b, z_a, z_b)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in layer.parameters())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("stop_gradient", [True, False])
@pytest.mark.parametrize("case", list(DEGENERATE))
def test_simsiam_is_finite_on_degenerate_batches(case, stop_gradient, dtype):
    z_1, z_2 = (z.to(dtype) for z in DEGENERATE[case])
    loss = _finite_with_gradients(lambda *v: simsiam_loss(*v, stop_gradient=stop_gradient), z_1, z_2, z_2, z_1)
    assert -1.001 <= loss <= 1.001


def test_simsiam_half_precision_large_values_do_not_overflow():
    torch.manual_seed(2)
    p = (torch.randn(8, 16) * 300).half()  # squared norms above float16's 65504
    assert simsiam_loss(p, p, p, p).item() == pytest.approx(-1.0, abs=1e-3)


# ------------------------------------------------------------------------------------------ training loss
def _tiny(model_class, **overrides):
    """(train, valid, test, trainer) of `model_class` on tests/fixtures/tiny, untrained."""
    config = build_config(model_class, "tiny", [TINY_YAML], tiny_config(train_batch_size=16, **overrides))
    train, valid, test = data_preparation(config, create_dataset(config))
    return train, valid, test, Trainer(config, model_class(config, train._dataset))


def test_nan_in_a_loss_term_stops_training_naming_the_term(workdir):
    train, _, _, trainer = _tiny(BTSRec, train_mode="prefix", alpha=0.2)
    model, calls = trainer.model, []
    bt_loss = model.bt_loss
    model.bt_loss = lambda z_a, z_b: bt_loss(z_a, z_b) * (NAN if calls.append(1) or len(calls) == 3 else 1)
    with pytest.raises(NonFiniteLossError) as error:
        trainer._train_epoch(train, 0)
    message = str(error.value)
    assert isinstance(error.value, RecBoleBTError) and "\n" not in message
    assert message.startswith("training loss is nan at epoch 0, batch 2 of BTSRec: loss term 'alpha * L_BT' is nan (L_pred = ")


def test_check_nan_forgets_the_terms_of_earlier_batches(workdir):
    _, _, _, trainer = _tiny(SASRec)
    trainer.model.loss_terms = {"L_pred": torch.tensor(2.5)}
    trainer._check_nan(torch.tensor(2.5))
    assert trainer.model.loss_terms == {}
    with pytest.raises(NonFiniteLossError, match=r"^training loss is inf at epoch 0, batch 1 of SASRec \(the model records no loss terms\)$"):
        trainer._check_nan(torch.tensor(float("inf")))


@pytest.mark.parametrize(
    "terms, message",
    [
        ({}, "training loss is nan at epoch 3, batch 7 of M (the model records no loss terms)"),
        ({"L_pred": NAN}, "training loss is nan at epoch 3, batch 7 of M: loss term 'L_pred' is nan"),
        ({"L_pred": 2.0, "alpha * L_BT": NAN}, "training loss is nan at epoch 3, batch 7 of M: loss term 'alpha * L_BT' is nan (L_pred = 2)"),
        ({"L_pred": float("inf"), "lmd * L_CL": NAN}, "training loss is nan at epoch 3, batch 7 of M: loss terms 'L_pred' is inf, 'lmd * L_CL' is nan"),
        ({"L_pred": 3e38, "alpha * L_BT": 3e38}, "training loss is nan at epoch 3, batch 7 of M, although its terms are finite (L_pred = 3e+38, alpha * L_BT = 3e+38): their sum overflowed"),
    ],
)
def test_non_finite_loss_message(terms, message):
    terms = {name: torch.tensor(value) for name, value in terms.items()}
    assert non_finite_loss_message(torch.tensor(NAN), terms, "M", 3, 7) == message


# ------------------------------------------------------------------------------------------ evaluation scores
class NaNScoreSASRec(SASRec):
    """SASRec whose scores are NaN for every third user of a batch (full sort) or candidate row (sampled)."""

    def full_sort_predict(self, interaction):
        scores = super().full_sort_predict(interaction)  # [B N]
        scores[::3] = NAN
        return scores

    def predict(self, interaction):
        scores = super().predict(interaction)  # [B]
        scores[::3] = NAN
        return scores


def test_nan_scores_stop_full_sort_evaluation(workdir):
    _, valid, _, trainer = _tiny(NaNScoreSASRec)
    users = sum(len(batch[0]) for batch in valid)
    bad = sum(len(range(0, len(batch[0]), 3)) for batch in valid)
    expected = f"NaNScoreSASRec gave non-finite scores (NaN or +inf, or -inf on the target item) to {bad} of {users} evaluated users: "
    for _ in range(2):  # the count is per evaluation
        with pytest.raises(NonFiniteScoreError, match=r"^" + re.escape(expected)):
            trainer.evaluate(valid, load_best_model=False)


def test_nan_scores_stop_sampled_evaluation(workdir):
    eval_args = {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "uni10", "group_by": "user"}
    _, valid, _, trainer = _tiny(NaNScoreSASRec, eval_args=eval_args)
    with pytest.raises(NonFiniteScoreError, match=r"^NaNScoreSASRec gave non-finite scores .* to [1-9]\d* of \d+ evaluated users: "):
        trainer.evaluate(valid, load_best_model=False)


def test_finite_scores_and_recbole_masks_evaluate(workdir):
    _, valid, _, trainer = _tiny(SASRec)
    result = trainer.evaluate(valid, load_best_model=False)  # history items are -inf (RecBole's mask): no error
    assert result and all(value == value for value in result.values())


def _check(collector, scores, positive_u, positive_i, history_index=None):
    collector.check_scores(scores, torch.tensor(positive_u), torch.tensor(positive_i), history_index)
    try:
        collector._raise_on_non_finite()
    except NonFiniteScoreError as error:
        return str(error)
    return None


def test_which_non_finite_scores_are_defects(workdir):
    _, _, _, trainer = _tiny(SASRec)
    collector, inf = trainer.eval_collector, float("inf")
    scores = torch.randn(4, 6)
    scores[:, 0] = -inf  # RecBole's padding column
    scores[1, 5] = -inf  # a model may rule an item out: not a target, not a defect
    assert _check(collector, scores.clone(), [0, 1, 2, 3], [1, 2, 3, 4]) is None
    seen = scores.clone()
    seen[2, 3] = -inf  # the target, already seen: RecBole's history mask put it there
    assert _check(collector, seen, [0, 1, 2, 3], [1, 2, 3, 4], (torch.tensor([2]), torch.tensor([3]))) is None
    assert "to 1 of 4 evaluated users" in _check(collector, seen, [0, 1, 2, 3], [1, 2, 3, 4])  # the model's -inf
    bad = scores.clone()
    bad[0, 2], bad[3, 4] = NAN, inf  # NaN on another item, +inf anywhere
    assert "SASRec gave non-finite scores" in _check(collector, bad, [0, 1, 2, 3], [1, 2, 3, 1])
    assert "to 2 of 4 evaluated users" in _check(collector, bad, [0, 1, 2, 3], [1, 2, 3, 1])
    values = torch.tensor([0.1, NAN, 0.7])  # eval_type value: one score per interaction
    assert "to 1 of 3 evaluated rows" in _check(collector, values, [0, 1, 2], [1, 2, 3])
