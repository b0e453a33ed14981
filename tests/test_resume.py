"""Resume (`resume_file`, RecBole's `Trainer.resume_checkpoint`): a run stopped after some epochs and resumed from
its checkpoint ends as the uninterrupted run; a checkpoint that does not fit the run is a one-line CheckpointError."""
import glob
import os

import pytest
import torch

from conftest import TINY_YAML, tiny_config
from recbole_bt import CheckpointError, ConfigError
from recbole_bt.quick_start import prepare, run_recbole_bt

EPOCHS, STOPPED_AFTER = 4, 2


def checkpoint_in(folder):
    (path,) = [p for p in glob.glob(os.path.join(folder, "*.pth")) if not p.endswith("-last.pth")]
    return path


def kill_in_epoch(monkeypatch, trainer_class, epoch):
    """A run killed during its `epoch`-th training epoch: `trainer_class._train_epoch` raises KeyboardInterrupt
    on that call. Returns the function that puts the real one back."""
    train_epoch, calls = trainer_class._train_epoch, []

    def killed(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == epoch:
            raise KeyboardInterrupt
        return train_epoch(self, *args, **kwargs)

    monkeypatch.setattr(trainer_class, "_train_epoch", killed)
    return lambda: monkeypatch.setattr(trainer_class, "_train_epoch", train_epoch)


@pytest.mark.parametrize("model", ["BTSRec", "CL4SRec"])  # same-target partners; the model's own augmentations
def test_resumed_run_ends_as_the_uninterrupted_run(workdir, model):
    uninterrupted = run_recbole_bt(model, "tiny", [TINY_YAML], tiny_config(epochs=EPOCHS, checkpoint_dir="full"))
    run_recbole_bt(model, "tiny", [TINY_YAML], tiny_config(epochs=STOPPED_AFTER, checkpoint_dir="part"))
    checkpoint = checkpoint_in("part")
    resumed = run_recbole_bt(model, "tiny", [TINY_YAML],
                             tiny_config(epochs=EPOCHS, checkpoint_dir="part", resume_file=checkpoint))  # fmt: skip
    assert resumed == uninterrupted
    assert checkpoint_in("part") == checkpoint  # RecBole's resume path: later best models go to the same file


def test_resumed_from_the_last_epoch_ends_as_the_uninterrupted_run(workdir, monkeypatch):
    """checkpoint_last: a run killed during epoch 4, after a validation that did not improve, resumes from its last
    completed epoch (not the best one) and ends as the uninterrupted run, testing the best model of the first part."""
    from recbole_bt.trainer import Trainer

    settings = dict(epochs=5, checkpoint_last=True, learning_rate=3.0, seed=4)  # validation never beats epoch 2
    uninterrupted = run_recbole_bt("BTSRec", "tiny", [TINY_YAML], tiny_config(checkpoint_dir="full", **settings))
    assert uninterrupted["best_epoch"] == 2  # the case that needs the last epoch's file: best < last
    revive = kill_in_epoch(monkeypatch, Trainer, 4)
    with pytest.raises(KeyboardInterrupt):
        run_recbole_bt("BTSRec", "tiny", [TINY_YAML], tiny_config(checkpoint_dir="part", **settings))
    revive()
    best = checkpoint_in("part")
    (last,) = glob.glob(os.path.join("part", "*-last.pth"))
    assert torch.load(last, weights_only=False)["epoch"] == 2 and torch.load(best, weights_only=False)["epoch"] == 1
    resumed = run_recbole_bt("BTSRec", "tiny", [TINY_YAML],
                             tiny_config(checkpoint_dir="part", resume_file=last, **settings))  # fmt: skip
    assert resumed == uninterrupted
    assert checkpoint_in("part") == best  # the best model still goes to (and is tested from) the first part's file


def test_a_run_folder_moved_elsewhere_resumes_from_its_last_epoch(workdir, monkeypatch):
    """The last checkpoint names the best model by the path it had: a folder moved (another machine, another path)
    resumes from its last epoch, keeps its best model beside it and ends as the uninterrupted run."""
    import shutil

    from recbole_bt.trainer import Trainer

    settings = dict(epochs=5, checkpoint_last=True, learning_rate=3.0, seed=4)  # validation never beats epoch 2
    uninterrupted = run_recbole_bt("BTSRec", "tiny", [TINY_YAML], tiny_config(checkpoint_dir="full", **settings))
    revive = kill_in_epoch(monkeypatch, Trainer, 4)
    with pytest.raises(KeyboardInterrupt):
        run_recbole_bt("BTSRec", "tiny", [TINY_YAML], tiny_config(checkpoint_dir="part", **settings))
    revive()
    shutil.move("part", "moved")
    (last,) = glob.glob(os.path.join("moved", "*-last.pth"))
    assert not glob.glob(last + "*.tmp")  # saved whole, through a temporary file
    resumed = run_recbole_bt("BTSRec", "tiny", [TINY_YAML],
                             tiny_config(checkpoint_dir="moved", resume_file=last, **settings))  # fmt: skip
    assert resumed == uninterrupted and not os.path.exists("part")  # tested from the moved best model
    assert os.path.basename(checkpoint_in("moved")) == os.path.basename(last).replace("-last.pth", ".pth")


def test_resuming_a_run_that_stopped_early_trains_nothing(workdir):
    settings = dict(epochs=5, checkpoint_last=True, learning_rate=1.0, seed=1, stopping_step=1)
    stopped = run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(**settings))
    assert (stopped["best_epoch"], stopped["epochs_run"]) == (1, 3)  # epochs 2 and 3 no better: patience 1 is over
    (last,) = glob.glob(os.path.join("saved", "*-last.pth"))
    assert run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(resume_file=last, **settings)) == stopped


@pytest.fixture
def sasrec_checkpoint(workdir):
    run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(epochs=1))
    return checkpoint_in("saved")


@pytest.mark.parametrize(
    "model, overrides, message",
    [
        ("BTSRec", {}, r"cannot resume BTSRec from '.*': its model is SASRec, this run's is BTSRec"),
        ("SASRec", {"hidden_size": 16}, r"its weights do not fit this config \(item_embedding.weight: \(31, 8\) in "
                                        r"the checkpoint, \(31, 16\) here and \d+ more\)"),
        ("SASRec", {"n_layers": 2}, r"trm_encoder.layer.1.* missing in the checkpoint"),
    ],
)
def test_checkpoint_that_does_not_fit_is_refused_in_one_line(sasrec_checkpoint, model, overrides, message):
    with pytest.raises(CheckpointError, match=message) as info:
        prepare(model, "tiny", [TINY_YAML], tiny_config(resume_file=sasrec_checkpoint, **overrides))
    assert "\n" not in str(info.value)


def test_missing_resume_file_is_refused(workdir):
    with pytest.raises(CheckpointError, match="resume_file 'nowhere.pth' not found"):
        prepare("SASRec", "tiny", [TINY_YAML], tiny_config(resume_file="nowhere.pth"))


@pytest.mark.parametrize("value", [1, "yes", None])
def test_bad_checkpoint_last_is_one_line(workdir, value):
    with pytest.raises(ConfigError, match=r"'checkpoint_last' must be one of \[True, False\], got ") as info:
        prepare("SASRec", "tiny", [TINY_YAML], tiny_config(checkpoint_last=value))
    assert "\n" not in str(info.value)


PRETRAIN = {"hidden_size": 8, "n_heads": 2, "inner_size": 16, "projector_sizes": [16, 16], "pretrain_epochs": 5,
            "pretrain_stopping_step": 0, "save_step": 2, "checkpoint_last": True}  # fmt: skip


def pretrained_weights(result):
    return torch.load(result["pretrain"]["pretrained_model_file"], weights_only=False)["state_dict"]


def assert_as_uninterrupted(resumed, uninterrupted):
    """A resumed 5-epoch pretraining ended as the uninterrupted one: epochs, loss, why it stopped, weights."""
    full, part = uninterrupted["pretrain"], resumed["pretrain"]
    assert part["epochs"] == 5 and part["pretrain_loss"] == full["pretrain_loss"] and part["stopped"] == full["stopped"]
    saved, expected = pretrained_weights(resumed), pretrained_weights(uninterrupted)
    assert all(torch.equal(saved[k], expected[k]) for k in expected)


@pytest.mark.parametrize("model", ["BTPretrain", "CLUE"])  # their own augmentations; dropout views
def test_resumed_pretraining_ends_as_the_uninterrupted_one(workdir, monkeypatch, model):
    """checkpoint_last in pretraining: killed during epoch 4, resumed from the -pretrain-last.pth of epoch 3, it
    ends with the uninterrupted run's loss curve, result and weights (the saved checkpoints' names included)."""
    from recbole_bt.trainer import PretrainTrainer

    uninterrupted = run_recbole_bt(model, "tiny", [TINY_YAML], tiny_config(checkpoint_dir="full", **PRETRAIN))
    revive = kill_in_epoch(monkeypatch, PretrainTrainer, 4)
    with pytest.raises(KeyboardInterrupt):
        run_recbole_bt(model, "tiny", [TINY_YAML], tiny_config(checkpoint_dir="part", **PRETRAIN))
    revive()
    last = os.path.join("part", f"{model}-tiny-pretrain-last.pth")
    assert torch.load(last, weights_only=False)["epoch"] == 2  # epochs 1-3 done (RecBole counts from 0)
    resumed = run_recbole_bt(model, "tiny", [TINY_YAML], tiny_config(checkpoint_dir="part", resume_file=last, **PRETRAIN))
    full, part = uninterrupted["pretrain"], resumed["pretrain"]
    assert part["epochs"] == full["epochs"] == 5 and part["pretrain_loss"] == full["pretrain_loss"]
    assert part["stopped"] == full["stopped"] and full["stopped"].startswith("pretrain_epochs = 5 reached (loss ")
    assert os.path.basename(part["pretrained_model_file"]) == os.path.basename(full["pretrained_model_file"]) == f"{model}-tiny-5.pth"
    saved, expected = pretrained_weights(resumed), pretrained_weights(uninterrupted)
    assert saved.keys() == expected.keys() and all(torch.equal(saved[k], expected[k]) for k in saved)


def test_a_pretraining_stopped_at_its_cap_resumes_to_a_higher_cap_as_if_never_capped(workdir, caplog):
    """Capped at 3 epochs, then resumed from its -pretrain-last.pth with pretrain_epochs 5: the result and
    weights of an uninterrupted 5-epoch run (the log names the raised cap)."""
    import logging

    uninterrupted = run_recbole_bt("BTPretrain", "tiny", [TINY_YAML], tiny_config(checkpoint_dir="full", **PRETRAIN))
    capped = run_recbole_bt("BTPretrain", "tiny", [TINY_YAML],
                            tiny_config(checkpoint_dir="part", **dict(PRETRAIN, pretrain_epochs=3)))  # fmt: skip
    assert capped["pretrain"]["epochs"] == 3 and capped["pretrain"]["stopped"].startswith("pretrain_epochs = 3")
    with caplog.at_level(logging.INFO):
        resumed = run_recbole_bt("BTPretrain", "tiny", [TINY_YAML], tiny_config(
            checkpoint_dir="part", resume_file="part/BTPretrain-tiny-pretrain-last.pth", **PRETRAIN))  # fmt: skip
    assert "had stopped at its cap (pretrain_epochs = 3 reached" in caplog.text
    assert_as_uninterrupted(resumed, uninterrupted)


def test_a_pretraining_stopped_at_its_plateau_resumes_under_a_wider_window_as_if_never_stopped(workdir, caplog):
    """Stopped by its plateau rule (a loss 50% lower within 1 epoch, so after epoch 2), then resumed from its
    -pretrain-last.pth with no plateau stop (pretrain_stopping_step 0): the result and weights of an uninterrupted
    5-epoch run without one (the log names the widened window)."""
    import logging

    settings = dict(PRETRAIN, pretrain_min_delta=0.5)
    uninterrupted = run_recbole_bt("BTPretrain", "tiny", [TINY_YAML], tiny_config(checkpoint_dir="full", **settings))
    stopped = run_recbole_bt("BTPretrain", "tiny", [TINY_YAML], tiny_config(
        checkpoint_dir="part", **dict(settings, pretrain_stopping_step=1)))  # fmt: skip
    assert stopped["pretrain"]["epochs"] == 2 and stopped["pretrain"]["stopped"].startswith("no loss 50% below")
    with caplog.at_level(logging.INFO):
        resumed = run_recbole_bt("BTPretrain", "tiny", [TINY_YAML], tiny_config(
            checkpoint_dir="part", resume_file="part/BTPretrain-tiny-pretrain-last.pth", **settings))  # fmt: skip
    assert "had stopped at its plateau (no loss 50% below" in caplog.text
    assert "continuing with pretrain_stopping_step = 0 (no plateau stop)" in caplog.text
    assert_as_uninterrupted(resumed, uninterrupted)


def test_a_resumed_pretraining_trains_at_the_learning_rate_it_is_given(workdir, caplog):
    """RecBole's resume restores the optimizer with the checkpoint's rate: a pretraining saved at learning_rate 0.002
    and resumed with 0.0005 has its optimizer at 0.0005, and the log names both; resumed at 0.002, no line."""
    import logging

    settings = dict(PRETRAIN, pretrain_epochs=2, learning_rate=0.002)
    run_recbole_bt("BTPretrain", "tiny", [TINY_YAML], tiny_config(checkpoint_dir="part", **settings))
    last = "part/BTPretrain-tiny-pretrain-last.pth"
    with caplog.at_level(logging.INFO):
        *_, trainer = prepare("BTPretrain", "tiny", [TINY_YAML], tiny_config(
            checkpoint_dir="part", resume_file=last, **dict(settings, pretrain_epochs=4, learning_rate=0.0005)))
    assert [group["lr"] for group in trainer.optimizer.param_groups] == [0.0005]
    assert "resumed at learning_rate 0.0005 (the checkpoint's: 0.002)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        *_, trainer = prepare("BTPretrain", "tiny", [TINY_YAML], tiny_config(
            checkpoint_dir="part", resume_file=last, **dict(settings, pretrain_epochs=4)))
    assert [group["lr"] for group in trainer.optimizer.param_groups] == [0.002]
    assert "resumed at learning_rate" not in caplog.text


def test_resuming_a_pretraining_that_had_stopped_trains_nothing(workdir, caplog):
    import logging

    settings = dict(PRETRAIN, pretrain_epochs=50, pretrain_stopping_step=2, learning_rate=0.0)  # stops on the loss
    stopped = run_recbole_bt("CLUE", "tiny", [TINY_YAML], tiny_config(**settings))
    assert stopped["pretrain"]["epochs"] < 50 and stopped["pretrain"]["stopped"].startswith("no lower loss for 2 epochs")
    with caplog.at_level(logging.INFO):
        again = run_recbole_bt("CLUE", "tiny", [TINY_YAML],
                               tiny_config(resume_file="saved/CLUE-tiny-pretrain-last.pth", **settings))  # fmt: skip
    assert again["pretrain"] == stopped["pretrain"]
    assert "the resumed pretraining had ended after epoch" in caplog.text and "pretrain epoch" not in caplog.text


def test_a_pretraining_checkpoint_is_no_resume_file(workdir):
    run_recbole_bt("CLUE", "tiny", [TINY_YAML], tiny_config(**dict(PRETRAIN, pretrain_epochs=2)))
    with pytest.raises(CheckpointError, match=r"holds no validation state \(a pretraining checkpoint: fine-tune from "
                                              r"it with pre_model_path; a pretraining run resumes from its "
                                              r"\*-pretrain-last.pth, saved with checkpoint_last: True\)"):  # fmt: skip
        prepare("CLUE", "tiny", [TINY_YAML], tiny_config(**dict(PRETRAIN, resume_file="saved/CLUE-tiny-2.pth")))
