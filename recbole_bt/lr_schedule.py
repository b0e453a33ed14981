"""Learning-rate warmup and decay for RecBole's trainers (`lr_warmup_epochs`, `lr_decay`).

RecBole 1.2.1 trains at a constant `learning_rate`. A schedule here is a pure function of the position in training
(epoch, batch), so a resumed run (`resume_file`) continues on the same curve with no scheduler state to save:

- warmup: the rate rises linearly over the first `lr_warmup_epochs` epochs (per batch), from learning_rate / steps
  to learning_rate, which steadies the first updates of a post-norm transformer at a higher rate;
- decay: after the warmup, `none` keeps the rate, `cosine` lowers it along half a cosine to 0 at the end of
  `epochs` (the budget, not the early stop: with early stopping a run usually ends before the rate reaches 0).
"""
import functools
import math

DECAYS = ("none", "cosine")


def lr_factor(epoch, batch, batches_per_epoch, warmup_epochs=0.0, decay="none", epochs=1):
    """The multiplier of learning_rate for batch `batch` (0-based) of epoch `epoch` (0-based)."""
    return lr_factor_at(epoch + (batch + 1) / max(batches_per_epoch, 1), warmup_epochs, decay, epochs)


def lr_factor_at(progress, warmup_epochs=0.0, decay="none", epochs=1):
    """The multiplier of learning_rate once `progress` epochs of training (a float) are done."""
    if decay not in DECAYS:
        raise NotImplementedError(f"lr_decay must be one of {list(DECAYS)}, got {decay!r}")
    if warmup_epochs and progress <= warmup_epochs:
        return progress / warmup_epochs
    if decay == "cosine":
        done = min((progress - warmup_epochs) / max(epochs - warmup_epochs, 1e-12), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * done))
    return 1.0


def with_lr_schedule(loss_func, optimizer, base_lr, epoch, batches_per_epoch, config, position=None):
    """`loss_func` that first sets the optimizer's rate for its batch (RecBole calls it once per batch, before
    the step); itself when the config asks for no schedule. `position`, when given, is a callable returning the
    epochs of training done once the current batch is done (a loader that hands out partial epochs knows it);
    otherwise the position is `epoch` plus the batches counted here."""
    warmup, decay = config["lr_warmup_epochs"] or 0, config["lr_decay"] or "none"
    if not warmup and decay == "none":
        return loss_func
    batch = [0]

    @functools.wraps(loss_func)
    def scheduled(interaction):
        progress = position() if position is not None else epoch + (batch[0] + 1) / max(batches_per_epoch, 1)
        factor = lr_factor_at(progress, warmup, decay, config["epochs"])
        for group in optimizer.param_groups:
            group["lr"] = base_lr * factor
        batch[0] += 1
        return loss_func(interaction)

    return scheduled
