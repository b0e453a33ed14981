"""Resuming a training run from its checkpoint (config key ``resume_file``; `recbole_bt.quick_start.prepare`).

`resume(trainer, resume_file)` is RecBole's `Trainer.resume_checkpoint`, after checking that the checkpoint fits
(same model, dataset, train stage and weight shapes; else a one-line `CheckpointError`). Resuming repeats the
uninterrupted run: RecBole saves the best model (epoch k) during `fit`, and `resume_state_saver`, `fit`'s callback,
adds to that checkpoint the best validation result and the state of every random generator (torch's, numpy's,
Python's, the training dataloader's and the model's own), so a run resumed from it trains epochs k+1... exactly as
the uninterrupted run did, wherever the first run stopped. Exact in one process with validation (``eval_step`` > 0;
without it RecBole saves every epoch, with no generator states); a multi-process run saves rank 0's generators.

With ``checkpoint_last: True`` the callback also writes, after every validated epoch, the same state of that epoch
to ``<best model file>-last.pth`` (one file, replaced whole: a run killed while saving keeps the previous epoch's),
which names the best model's file: a run resumed from it continues after the last completed epoch (nothing is
trained twice), keeps saving its best model to the first run's file and tests that one. A checkpoint's companion
files (the best model, the pretrained model) are looked for beside it first, so a run folder moved or copied to
another machine (another path) resumes as well.

Pretraining (``train_stage: pretrain``, `recbole_bt.trainer.PretrainTrainer`) has no validation: with
``checkpoint_last``, the callback keeps each pretraining epoch's state (weights, optimizer, the loss curve, the lowest
loss and the epochs since, why it stopped, the generators) in the trainer's `pretrain_last_file`; resumed from it,
pretraining continues after that epoch as the uninterrupted run did, and a pretraining that had ended trains nothing
and reports the checkpoint it had saved.

A run resumed with another ``learning_rate`` than its checkpoint's trains on at the one it is given (RecBole's resume
restores the optimizer with the checkpoint's rate and says nothing); the log names both.
"""
import os
import random
import re
from logging import getLogger

import numpy as np
import torch

from recbole_bt.checkpoint import check_resumable, read_checkpoint
from recbole_bt.compat import load_checkpoint
from recbole_bt.model.mixins import SeededGenerator


def _generator_states(obj):
    """The states of the torch and numpy random generators that `obj` holds as attributes."""
    return {
        name: value.get_state() if isinstance(value, torch.Generator) else value.bit_generator.state
        for name, value in vars(obj).items()
        if isinstance(value, (torch.Generator, np.random.Generator))
    }


def _set_generator_states(obj, states):
    for name, state in states.items():
        generator = getattr(obj, name)
        if isinstance(generator, torch.Generator):
            generator.set_state(state)
        else:
            generator.bit_generator.state = state


def random_state(model, train_data):
    """Every random generator a training epoch draws from: torch's, numpy's and Python's global ones, the
    training dataloader's (shuffling, same-target partners) and the model's own (augmentations)."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
             "train_data": _generator_states(train_data),
             "model": {name: s for name, m in model.named_modules() if (s := _generator_states(m))}}  # fmt: skip
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(model, train_data, state):
    """Restore what `random_state` saved."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    _set_generator_states(train_data, state["train_data"])
    modules = dict(model.named_modules())
    for name, states in state["model"].items():
        if isinstance(modules[name], SeededGenerator) and modules[name]._generator is None:
            modules[name].generator(next(model.parameters()).device)  # created on first use
        _set_generator_states(modules[name], states)


def last_checkpoint_file(best_model_file):
    """Where ``checkpoint_last`` keeps the last epoch's checkpoint of a run whose best model goes to `best_model_file`."""
    return re.sub(r"(\.pth)?$", "-last.pth", best_model_file, count=1)


def resume_state_saver(trainer, train_data, saved):
    """`fit`'s callback: right after RecBole saves a new best model, add to its checkpoint what RecBole leaves
    out and an exact resume needs (the best validation result, the random generators' states); with
    ``checkpoint_last``, save every validated epoch's state to `last_checkpoint_file` as well."""
    config = trainer.config

    def callback(epoch_idx, valid_score):
        if not saved or (not config["single_spec"] and config["local_rank"] != 0):
            return
        if getattr(trainer.model, "train_stage", None) == "pretrain":
            if config["checkpoint_last"]:
                save_pretrain_state(trainer, train_data, epoch_idx)
            return
        resume_state = {"best_valid_result": trainer.best_valid_result, "best_epoch": getattr(trainer, "best_epoch", None),
                        "random_state": random_state(trainer.model, train_data)}  # fmt: skip
        if trainer.cur_step == 0:  # cur_step is 0 right after an improvement, when RecBole has just saved
            checkpoint = load_checkpoint(trainer.saved_model_file)
            checkpoint.update(resume_state)
            torch.save(checkpoint, trainer.saved_model_file, pickle_protocol=4)
        if config["checkpoint_last"]:
            last = last_checkpoint_file(trainer.saved_model_file)
            trainer._save_checkpoint(epoch_idx, verbose=False, saved_model_file=last + ".tmp")  # save_whole's file
            checkpoint = load_checkpoint(last + ".tmp")
            checkpoint.update(resume_state, best_model_file=trainer.saved_model_file)
            save_whole(checkpoint, last)

    return callback


def save_pretrain_state(trainer, train_data, epoch_idx):
    """A pretraining epoch's state in the trainer's `pretrain_last_file` (overwritten every epoch), in one write:
    the weights and optimizer, RecBole's resume fields, the pretraining's own state and the generators."""
    checkpoint = dict(trainer.checkpoint_state(epoch_idx), best_valid_score=trainer.best_valid_score,
                      pretrain_state=dict(trainer.pretrain_state, curve=trainer.pretrain_curve,
                                          pretrained_model_file=trainer.saved_model_file),
                      random_state=random_state(trainer.model, train_data))  # fmt: skip
    save_whole(checkpoint, trainer.pretrain_last_file)


def save_whole(checkpoint, path):
    """torch.save to `path` through a temporary file: a process killed meanwhile leaves the previous file whole."""
    torch.save(checkpoint, path + ".tmp", pickle_protocol=4)
    os.replace(path + ".tmp", path)


def beside(recorded, checkpoint_file):
    """Where a file that a checkpoint names (by the path it had when saved) is now: the file of that name beside
    the checkpoint, when there is one or the recorded folder is gone (a run folder moved to another path);
    else the recorded path (a checkpoint copied away from its run)."""
    near = os.path.join(os.path.dirname(checkpoint_file), os.path.basename(recorded))
    return near if os.path.exists(near) or not os.path.isdir(os.path.dirname(recorded) or ".") else recorded


def given_rate(trainer):
    """Set the optimizer's rate to the trainer's `learning_rate` where the resumed optimizer state brought another
    (a schedule, `lr_warmup_epochs` / `lr_decay`, sets every batch's rate from `learning_rate` anyway)."""
    saved = sorted({group["lr"] for group in trainer.optimizer.param_groups})
    if trainer.config["lr_warmup_epochs"] or (trainer.config["lr_decay"] or "none") != "none" \
            or saved == [trainer.learning_rate]:
        return
    for group in trainer.optimizer.param_groups:
        group["lr"] = trainer.learning_rate
    getLogger().info(f"resumed at learning_rate {trainer.learning_rate} (the checkpoint's: "
                     f"{', '.join(map(str, saved))})")


def resume(trainer, resume_file, train_data=None):
    """Continue the training saved in `resume_file` (RecBole's `Trainer.resume_checkpoint`: weights, optimizer,
    epoch, early-stopping state). A checkpoint of another model, dataset or shape is a one-line CheckpointError.
    With `train_data`, the random generators continue where they stopped, so the resumed run repeats the
    uninterrupted one."""
    checkpoint = read_checkpoint(resume_file, "resume_file")
    check_resumable(checkpoint, trainer.config, trainer.model.state_dict(), resume_file)
    trainer.resume_checkpoint(resume_file)
    given_rate(trainer)
    if checkpoint.get("best_model_file"):  # a `checkpoint_last` file: the best model stays in its own file
        trainer.saved_model_file = beside(checkpoint["best_model_file"], resume_file)
    trainer.best_valid_result = checkpoint.get("best_valid_result")
    trainer.epochs_run, trainer.best_epoch = trainer.start_epoch, checkpoint.get("best_epoch")
    # saved as the run ended (its last epoch, or early stopping): `fit` trains nothing and keeps the best model's
    # file as it is (RecBole's would overwrite it with these last weights)
    trainer.ended = trainer.start_epoch >= trainer.epochs or trainer.cur_step > trainer.stopping_step
    if "pretrain_state" in checkpoint:  # a pretraining epoch's (`save_pretrain_state`)
        state = dict(checkpoint["pretrain_state"])
        trainer.pretrain_curve = state.pop("curve")
        trainer.saved_model_file = beside(state.pop("pretrained_model_file"), resume_file)
        state.setdefault("reference", state["best_loss"])  # saved before pretrain_min_delta: the same, at 0
        trainer.pretrain_state.update(state)
    if train_data is not None and "random_state" in checkpoint:
        set_random_state(trainer.model, train_data, checkpoint["random_state"])
