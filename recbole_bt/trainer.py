"""recbole_bt's trainers: RecBole's, with the evaluation that recbole_bt's metrics need.

`EvaluationMixin` swaps in `recbole_bt.evaluator.Collector` and, when a metric asks for them (effective_rank),
collects the evaluated users' sequence embeddings during the evaluation step. It applies to any RecBole
`Trainer` subclass: `recbole_bt.registry.get_trainer` returns `with_evaluation(<the trainer RecBole would
pick>)`, so RecBole's own models get the new metrics too. `Trainer` is RecBole's default trainer with it.
It also guards the numbers: a NaN or infinite training loss stops the run with a message naming the loss terms
that are (`model.loss_terms`, which recbole_bt's models record in `calculate_loss`), and an evaluation whose
scores are NaN or +inf (or -inf on a target item) stops instead of reporting metrics (`Collector.check_scores`).

`precision: bf16` runs each training batch's forward pass and loss under `torch.autocast(bfloat16)` (CPU or CUDA);
the weights, their gradients and the optimizer stay float32, and evaluation runs in float32. (RecBole's own
`enable_amp` autocasts to float16 with a GradScaler on CUDA, bfloat16 on CPU; `precision` is bfloat16 on both.)

`PretrainTrainer`: the two stages of the pretraining models (`recbole_bt.model.pretrain`).
"""
import contextlib
import functools
import logging
import math
import os
from time import time

import torch
from recbole.trainer import Trainer as RecBoleTrainer
from recbole.utils import set_color

from recbole_bt.data.checks import topk_error
from recbole_bt.data.masking import describe_protocol
from recbole_bt.errors import NonFiniteLossError
from recbole_bt.evaluator import Collector
from recbole_bt.evaluator.embedding import capture_forward, captured_embedding, sequence_embedding
from recbole_bt.lr_schedule import with_lr_schedule


class EvaluationMixin:
    """Put in front of a RecBole `Trainer` subclass: `class MyTrainer(EvaluationMixin, SomeRecBoleTrainer)`."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.eval_collector = Collector(config)
        self._loss_position = [0, 0]  # (epoch, batch) of the next `_check_nan`
        self.epochs_run, self.best_epoch = 0, None  # epochs trained, the (1-based) epoch of the best validation
        self.ended = False  # resumed from a run that had ended: nothing to train (recbole_bt.resume)
        # for `fit`'s callback_fn (benchmarks' learning curves): seconds spent in training epochs, the last validation
        self.train_seconds, self.last_valid_result = 0.0, None

    def fit(self, train_data, valid_data=None, *args, **kwargs):
        """RecBole's `fit`, refused before any training when its evaluation cannot rank (topk > catalog)."""
        n_items = getattr(self.model, "n_items", None)
        error = topk_error(self.config, n_items - 1) if valid_data is not None and n_items else None  # 0: padding
        if error is not None:
            raise error
        if valid_data is not None:
            self.logger.info(set_color("evaluation protocol", "yellow") + f": {describe_protocol(self.config)}")
        if getattr(self, "ended", False):  # resumed from the checkpoint of a run that had ended (recbole_bt.resume)
            self.logger.info(f"the resumed run had ended after epoch {self.start_epoch} (best: {self.best_epoch}): "
                             f"nothing left to train")  # fmt: skip
            return self.best_valid_score, self.best_valid_result
        names_protocol = ProtocolFilter(describe_protocol(self.config, short=True))
        self.logger.addFilter(names_protocol)
        try:
            return super().fit(train_data, valid_data, *args, **kwargs)
        finally:
            self.logger.removeFilter(names_protocol)

    def _build_optimizer(self, **kwargs):
        """RecBole's optimizer, with `adam_betas` (RecBole's builder passes none, so torch's (0.9, 0.999))."""
        optimizer = super()._build_optimizer(**kwargs)
        betas = self.config["adam_betas"]
        if betas is not None and "betas" in optimizer.defaults:  # Config refuses betas for a learner without them
            optimizer.defaults["betas"] = tuple(betas)
            for group in optimizer.param_groups:
                group["betas"] = tuple(betas)
        return optimizer

    def evaluate(self, eval_data, *args, **kwargs):
        """RecBole's; a trainer that evaluates without `fit` (e.g. a reloaded checkpoint) takes the catalog size
        that coverage metrics read from the evaluated dataset (RecBole collects it from the training data in `fit`)."""
        if eval_data is not None:
            self.eval_collector.catalog_collect(eval_data._dataset)
        return super().evaluate(eval_data, *args, **kwargs)

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, *args, **kwargs):
        self._loss_position = [epoch_idx, 0]
        loss_func = with_precision(loss_func or self.model.calculate_loss, self.config["precision"], self.device)
        position = getattr(train_data, "epochs_done", None)  # a loader handing out partial epochs knows where it is
        loss_func = with_lr_schedule(loss_func, self.optimizer, self.learning_rate, epoch_idx, len(train_data),
                                     self.config, position)  # fmt: skip
        start = time()
        result = super()._train_epoch(train_data, epoch_idx, loss_func, *args, **kwargs)
        self.train_seconds += time() - start
        self.epochs_run = epoch_idx + 1
        return result

    def _valid_epoch(self, valid_data, *args, **kwargs):
        """RecBole's, recording the epoch of the best validation score so far (`best_epoch`)."""
        score, result = super()._valid_epoch(valid_data, *args, **kwargs)
        best = self.best_valid_score
        if self.best_epoch is None or (score >= best if self.valid_metric_bigger else score <= best):  # RecBole's
            self.best_epoch = self.epochs_run
        self.last_valid_result = result
        return score, result

    def train_one_epoch(self, train_data, epoch_idx):
        """One training epoch outside `fit` (its mean loss), for callers that drive the epochs themselves."""
        return self._train_epoch(train_data, epoch_idx, show_progress=False)

    def validate(self, valid_data):
        """One validation outside `fit`: (score, result)."""
        return self._valid_epoch(valid_data, show_progress=False)

    def _check_nan(self, loss):
        """RecBole's check, for inf too, raising `NonFiniteLossError` with the model's loss terms of the batch."""
        epoch, batch = self._loss_position
        self._loss_position[1] += 1
        terms = getattr(self.model, "loss_terms", None) or {}
        if terms:
            self.model.loss_terms = {}  # a later batch whose loss records no terms must not show these
        if not torch.isfinite(loss).all():
            raise NonFiniteLossError(non_finite_loss_message(loss, terms, type(self.model).__name__, epoch, batch))

    def _full_sort_batch_eval(self, batched_data):
        needs_embeddings = self.eval_collector.needs_embeddings
        # with embeddings, reuse the encoder pass of full_sort_predict
        with capture_forward(self.model) if needs_embeddings else contextlib.nullcontext() as calls:
            interaction, scores, positive_u, positive_i = super()._full_sort_batch_eval(batched_data)
        self.eval_collector.check_scores(scores, positive_u, positive_i, history_index=batched_data[1])
        if not needs_embeddings:
            return interaction, scores, positive_u, positive_i
        embedding = captured_embedding(self.model, interaction, calls)
        if embedding is None:
            embedding = sequence_embedding(self.model, interaction)
        self.eval_collector.embedding_collect(embedding)
        return interaction, scores, positive_u, positive_i

    def _neg_sample_batch_eval(self, batched_data):
        result = super()._neg_sample_batch_eval(batched_data)
        self.eval_collector.check_scores(*result[1:])
        if self.eval_collector.needs_embeddings:
            interaction, row_idx = batched_data[0], batched_data[1]
            first = torch.ones_like(row_idx, dtype=torch.bool)  # one row per user: its first candidate
            first[1:] = row_idx[1:] != row_idx[:-1]
            users = interaction[first.nonzero().squeeze(1).cpu()].to(self.device)
            self.eval_collector.embedding_collect(sequence_embedding(self.model, users))
        return result


class ProtocolFilter(logging.Filter):
    """Names the evaluation protocol in RecBole's per-epoch "valid result" log lines."""

    def __init__(self, protocol):
        super().__init__()
        self.protocol = protocol

    def filter(self, record):
        if isinstance(record.msg, str) and "valid result" in record.msg and self.protocol not in record.msg:
            record.msg = record.msg.replace("valid result", f"valid result ({self.protocol})", 1)
        return True


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def with_precision(loss_func, precision, device):
    """`loss_func` run under `torch.autocast` to the `precision` ('fp32': itself; 'bf16': bfloat16)."""
    dtype = PRECISIONS[precision or "fp32"]
    if dtype is None:
        return loss_func

    @functools.wraps(loss_func)
    def autocast_loss(interaction):
        with torch.autocast(torch.device(device).type, dtype=dtype):
            return loss_func(interaction)

    return autocast_loss


def non_finite_loss_message(loss, terms, model_name, epoch, batch):
    """One line: where the training loss became non-finite, and which of its recorded terms {name: value} are."""
    where = f"training loss is {loss.item()} at epoch {epoch}, batch {batch} of {model_name}"
    if not terms:
        return f"{where} (the model records no loss terms)"
    bad = {name: value.item() for name, value in terms.items() if not torch.isfinite(value).all()}
    good = ", ".join(f"{name} = {value.item():.4g}" for name, value in terms.items() if name not in bad)
    if not bad:
        return f"{where}, although its terms are finite ({good}): their sum overflowed"
    named = ", ".join(f"{name!r} is {value}" for name, value in bad.items())
    return f"{where}: loss term{'s' if len(bad) > 1 else ''} {named}" + (f" ({good})" if good else "")


class Trainer(EvaluationMixin, RecBoleTrainer):
    """RecBole's `Trainer` with recbole_bt's evaluation."""


def plateau_step(state, loss, min_delta=0.0):
    """One pretraining epoch's `loss` into the plateau `state` (best_loss, reference, stale), in place.

    The epoch improves when its loss is below `reference` (the loss of the last improving epoch) by more than
    ``min_delta x |reference|``; it then becomes the reference and `stale` restarts at 0, otherwise `stale` counts
    one more epoch (Keras' `EarlyStopping(min_delta)`, relative). With min_delta 0 any lower loss improves; with
    min_delta d, `stale` reaching n means the loss fell by less than d of its size over those n epochs, however
    steadily. `best_loss` is the lowest loss seen, improving or not."""
    reference = state["reference"]
    if math.isinf(reference) or loss < reference - min_delta * abs(reference):
        state["reference"], state["stale"] = loss, 0
    else:
        state["reference"], state["stale"] = reference, state["stale"] + 1
    state["best_loss"] = min(state["best_loss"], loss)
    return state


class PretrainTrainer(Trainer):
    """`train_stage: pretrain`: `pretrain` instead of `fit`; `finetune`: RecBole's `fit`, with its evaluation.

    Pretraining runs at most ``pretrain_epochs`` epochs, logs the mean loss per batch and the collapse indicators
    (`model.collapse_indicators` on a fixed sample of training sequences, in eval mode), saves a checkpoint every
    ``save_step`` epochs and after the last one (`{model}-{dataset}-{epoch}.pth` in ``checkpoint_dir``, as
    RecBole's S3Rec), and stops early when the loss has not improved for ``pretrain_stopping_step`` epochs
    (RecBole's validation metrics do not exist before fine-tuning; with ``pretrain_min_delta`` d > 0, when it has
    not fallen below the last improvement's loss by more than d x its size: `plateau_step`); the log and
    `pretrain_result` say why it stopped. `fit`'s ``callback_fn(epoch_idx, loss)`` runs after each pretraining
    epoch: with ``checkpoint_last``, `recbole_bt.resume.resume_state_saver` keeps the epoch's state in
    `pretrain_last_file`, from which a pretraining run resumes after its last completed epoch (``resume_file``)
    and ends as the uninterrupted one; a run that had stopped continues when resumed under a higher cap or a wider
    plateau window (``pretrain_stopping_step`` above its count, or 0), as if never stopped.
    """

    PROBE_ROWS = 2048

    def __init__(self, config, model):
        super().__init__(config, model)
        self.pretrain_epochs = config["pretrain_epochs"]
        self.save_step = config["save_step"]
        self.pretrain_stopping_step = config["pretrain_stopping_step"]
        self.pretrain_min_delta = config["pretrain_min_delta"] or 0.0
        self.pretrain_curve = []  # one point per epoch: loss, collapse indicators, seconds
        # what a resumed pretraining continues from (`recbole_bt.resume`): the lowest loss, the loss the stale
        # epochs are counted against and how many there are (`plateau_step`), why it stopped (None: not yet)
        self.pretrain_state = {"best_loss": math.inf, "reference": math.inf, "stale": 0, "stopped": None}
        self.pretrain_result = None

    @property
    def pretrain_last_file(self):
        """The checkpoint of the last completed pretraining epoch (``checkpoint_last``), one file per run folder."""
        return os.path.join(self.checkpoint_dir, f"{self.config['model']}-{self.config['dataset']}-pretrain-last.pth")

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        if self.model.train_stage == "pretrain":
            return self.pretrain(train_data, verbose, show_progress, callback_fn)
        return super().fit(train_data, valid_data, verbose, saved, show_progress, callback_fn)

    def _probe(self, train_data):
        dataset = train_data._dataset
        rows = torch.arange(min(self.PROBE_ROWS, len(dataset)))
        return dataset.inter_feat[rows].to(self.device)

    def collapse_indicators(self, probe):
        self.model.eval()
        try:
            return self.model.collapse_indicators(probe)
        finally:
            self.model.train()

    def pretrain(self, train_data, verbose=True, show_progress=False, callback_fn=None):
        config, state = self.config, self.pretrain_state
        if any("epochs" in d for d in (config.file_config_dict, config.variable_config_dict, config.cmd_config_dict)):
            self.logger.warning(f"pretraining runs at most pretrain_epochs = {self.pretrain_epochs} epochs (stopping "
                                f"after pretrain_stopping_step = {self.pretrain_stopping_step} without a lower loss, "
                                f"pretrain_min_delta = {self.pretrain_min_delta:g}); "
                                f"the epochs = {config['epochs']} given here applies to fine-tuning only")  # fmt: skip
        capped = bool(state["stopped"]) and state["stopped"].startswith("pretrain_epochs")
        if capped and self.start_epoch < self.pretrain_epochs:
            self.logger.info(f"the resumed pretraining had stopped at its cap ({state['stopped']}): continuing to "
                             f"pretrain_epochs = {self.pretrain_epochs}")  # fmt: skip
            state["stopped"] = None  # a cap raised since: the plateau's count goes on where it was
        window = self.pretrain_stopping_step
        if state["stopped"] and self.start_epoch < self.pretrain_epochs and (not window or state["stale"] < window):
            self.logger.info(f"the resumed pretraining had stopped at its plateau ({state['stopped']}): continuing "
                             f"with pretrain_stopping_step = {window}" + (" (no plateau stop)" if not window else ""))
            state["stopped"] = None  # a window widened since (0: none): its count goes on where it was
        if state["stopped"]:  # resumed from the last checkpoint of a pretraining that had ended
            self.logger.info(f"the resumed pretraining had ended after epoch {self.start_epoch} ({state['stopped']}): "
                             f"nothing left to train")  # fmt: skip
        probe, epochs = self._probe(train_data), range(self.start_epoch, self.pretrain_epochs)
        for epoch_idx in epochs if not state["stopped"] else ():
            loss = self._pretrain_epoch(train_data, epoch_idx, probe, verbose, show_progress)
            plateau_step(state, loss, self.pretrain_min_delta)
            if self.pretrain_stopping_step and state["stale"] >= self.pretrain_stopping_step:
                lower = "no lower loss" if not self.pretrain_min_delta else (
                    f"no loss {100 * self.pretrain_min_delta:g}% below {state['reference']:.4f}")
                state["stopped"] = (f"{lower} for {state['stale']} epochs (best {state['best_loss']:.4f}, "
                                    f"pretrain_stopping_step {self.pretrain_stopping_step})")  # fmt: skip
            elif epoch_idx + 1 == self.pretrain_epochs:
                state["stopped"] = (f"pretrain_epochs = {self.pretrain_epochs} reached (loss still " + (
                    "falling)" if state["stale"] == 0 else f"not below {state['best_loss']:.4f} for {state['stale']} epochs)"))  # fmt: skip
            if (epoch_idx + 1) % self.save_step == 0 or state["stopped"]:
                self.save_pretrained_model(epoch_idx, verbose)
            if callback_fn:
                callback_fn(epoch_idx, loss)
            if state["stopped"]:
                if verbose:
                    self.logger.info(f"pretraining stopped: {state['stopped']}")
                break
        final = {k: v for k, v in self.pretrain_curve[-1].items() if k.endswith("_std")} if self.pretrain_curve else {}
        self.pretrain_result = {"pretrain_loss": state["best_loss"], "epochs": len(self.pretrain_curve), **final,
                                "stopped": state["stopped"], "pretrained_model_file": self.saved_model_file}  # fmt: skip
        return self.best_valid_score, self.best_valid_result

    def _pretrain_epoch(self, train_data, epoch_idx, probe, verbose, show_progress):
        """One epoch: its mean loss per batch, with the collapse indicators added to `pretrain_curve` and logged."""
        start = time()
        total = self._train_epoch(train_data, epoch_idx, show_progress=show_progress)
        loss = (sum(total) if isinstance(total, tuple) else total) / max(len(train_data), 1)
        indicators = self.collapse_indicators(probe)
        self.pretrain_curve.append({"epoch": epoch_idx + 1, "loss": loss, **indicators, "seconds": round(time() - start, 4)})
        if verbose:
            stds = ", ".join(f"{k.replace('_', ' ')}: {v:.4f}" for k, v in indicators.items())
            self.logger.info(
                set_color("pretrain epoch", "green") + f" {epoch_idx} [time: {time() - start:.2f}s, "
                f"loss: {loss:.4f}, {stds} (collapsed: 0; spread: 1/sqrt(dim))]"
            )
        return loss

    def checkpoint_state(self, epoch_idx):
        """RecBole's checkpoint layout (config, epoch, cur_step, state_dict, optimizer, other_parameter)."""
        return {"config": self.config, "epoch": epoch_idx, "cur_step": self.cur_step,
                "state_dict": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "other_parameter": self.model.other_parameter()}  # fmt: skip

    def save_pretrained_model(self, epoch_idx, verbose=True):
        """The pretrained model of epoch `epoch_idx` in `{model}-{dataset}-{epoch}.pth` (`checkpoint_state`)."""
        name = f"{self.config['model']}-{self.config['dataset']}-{epoch_idx + 1}.pth"
        self.saved_model_file = os.path.join(self.checkpoint_dir, name)
        torch.save(self.checkpoint_state(epoch_idx), self.saved_model_file, pickle_protocol=4)
        if verbose:
            self.logger.info(set_color("Saving current", "blue") + f": {self.saved_model_file}")


@functools.lru_cache(maxsize=None)
def with_evaluation(trainer_class):
    """`trainer_class` with recbole_bt's evaluation in front (itself if it has it, or is no RecBole Trainer)."""
    if issubclass(trainer_class, EvaluationMixin) or not issubclass(trainer_class, RecBoleTrainer):
        return trainer_class
    if trainer_class is RecBoleTrainer:
        return Trainer
    return type(
        trainer_class.__name__,
        (EvaluationMixin, trainer_class),
        {"__module__": __name__, "__doc__": f"RecBole's {trainer_class.__name__} with recbole_bt's evaluation."},
    )
