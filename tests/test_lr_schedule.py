"""`lr_warmup_epochs` and `lr_decay`: the factor by hand, and the rate a trainer actually used."""
import math

import pytest
from conftest import TINY_YAML, tiny_config

from recbole_bt import ConfigError
from recbole_bt.lr_schedule import lr_factor, lr_factor_at
from recbole_bt.quick_start import prepare, run_recbole_bt


def test_factor_by_hand():
    # 4 batches per epoch, warmup 2 epochs: after batch 0 of epoch 0, 0.25 epochs are done -> 0.125
    assert lr_factor(0, 0, 4, warmup_epochs=2) == 0.125
    assert lr_factor(1, 3, 4, warmup_epochs=2) == 1.0  # the warmup's last batch
    assert lr_factor(5, 2, 4, warmup_epochs=2) == 1.0  # constant after it
    # cosine over epochs=4 after a 2-epoch warmup: halfway through the rest (3 epochs done) -> 0.5; the end -> 0
    assert lr_factor(2, 3, 4, warmup_epochs=2, decay="cosine", epochs=4) == pytest.approx(0.5)
    assert lr_factor(3, 3, 4, warmup_epochs=2, decay="cosine", epochs=4) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(0, 1, 4, decay="cosine", epochs=1) == pytest.approx(0.5 * (1 + math.cos(math.pi / 2)))
    assert lr_factor(7, 0, 4) == 1.0  # no schedule
    with pytest.raises(NotImplementedError, match="lr_decay must be one of"):
        lr_factor(0, 0, 4, decay="linear")


@pytest.mark.parametrize("schedule, factor", [({}, 1.0), ({"lr_warmup_epochs": 2}, 0.5),
                                              ({"lr_decay": "cosine", "epochs": 2}, 0.0)])  # fmt: skip
def test_trainer_trains_at_the_scheduled_rate(workdir, schedule, factor):
    """After one epoch (of epochs=2 with cosine), the optimizer holds learning_rate x the factor of its last batch."""
    config, train, valid, _, trainer = prepare("SASRec", "tiny", [TINY_YAML], tiny_config(**dict({"epochs": 1}, **schedule)))
    trainer._train_epoch(train, 0 if "lr_decay" not in schedule else 1)
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [pytest.approx(0.001 * factor, abs=1e-12)]


@pytest.mark.parametrize("key, value, message", [
    ("lr_warmup_epochs", -1, r"'lr_warmup_epochs' must be a finite number in \[0, inf\), got -1"),
    ("lr_decay", "linear", r"'lr_decay' must be one of \['none', 'cosine'\], got 'linear' \(str\)"),
])  # fmt: skip
def test_bad_values_are_one_line(workdir, key, value, message):
    with pytest.raises(ConfigError, match=message):
        run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(**{key: value}))


def test_a_loader_that_knows_its_position_sets_the_rate(workdir):
    """A loader handing out partial epochs (the benchmarks' wall-time slices) reports the epochs done; the
    schedule follows it, not the epoch index it is called with: 1.5 epochs into a 2-epoch warmup -> 0.75."""

    class Positioned:
        def __init__(self, loader):
            self.loader = loader

        def __getattr__(self, name):
            return getattr(self.loader, name)

        def __iter__(self):
            return iter(self.loader)

        def __len__(self):
            return len(self.loader)

        def epochs_done(self):
            return 1.5

    config, train, _, _, trainer = prepare("SASRec", "tiny", [TINY_YAML], tiny_config(epochs=1, lr_warmup_epochs=2))
    trainer._train_epoch(Positioned(train), 7)
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [pytest.approx(0.001 * 0.75, abs=1e-12)]
    assert lr_factor_at(1.5, warmup_epochs=2) == 0.75
