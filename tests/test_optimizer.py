"""`adam_betas`: the optimizer RecBole builds gets them; bad values are one line."""
import pytest
from conftest import TINY_YAML, tiny_config

from recbole_bt import ConfigError
from recbole_bt.quick_start import build_config, prepare


@pytest.mark.parametrize("betas, expected", [(None, (0.9, 0.999)), ([0.9, 0.98], (0.9, 0.98))])
def test_betas_reach_the_optimizer(workdir, betas, expected):
    _, _, _, _, trainer = prepare("SASRec", "tiny", [TINY_YAML], tiny_config(adam_betas=betas))
    assert [g["betas"] for g in trainer.optimizer.param_groups] == [expected]
    # and Adam uses them: after one step from zero moments the second moment is (1 - beta2) * grad ** 2
    trainer._train_epoch(trainer_batches(trainer), 0)
    param = next(p for p in trainer.model.parameters() if p.grad is not None and p.grad.abs().sum() > 0)
    state = trainer.optimizer.state[param]
    assert state["exp_avg_sq"].sum().item() == pytest.approx((1 - expected[1]) * (param.grad**2).sum().item(), rel=1e-5)


def trainer_batches(trainer):
    """One training batch of the tiny dataset (so the optimizer has taken exactly one step)."""
    from recbole_bt.quick_start import prepare as again

    _, train, _, _, _ = again("SASRec", "tiny", [TINY_YAML], tiny_config(train_batch_size=10**6))
    return train


@pytest.mark.parametrize("overrides, message", [
    ({"adam_betas": [0.9]}, r"'adam_betas' must be a list of 2 values, each a finite number in \[0, 1\), or ~, got \[0.9\]"),
    ({"adam_betas": [0.9, 1.0]}, r"'adam_betas' must be a list of 2 values"),
    ({"adam_betas": 0.98}, r"'adam_betas' must be a list of 2 values.*got 0.98"),
    ({"adam_betas": [0.9, 0.98], "learner": "sgd"}, r"adam_betas applies to learner adam / adamw / sparse_adam, not 'sgd'"),
])  # fmt: skip
def test_bad_betas_are_one_line(workdir, overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_config("SASRec", "tiny", [TINY_YAML], tiny_config(**overrides))
