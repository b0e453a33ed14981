"""recbole_bt's trainers: RecBole's, with the evaluation that recbole_bt's metrics need.

`EvaluationMixin` swaps in `recbole_bt.evaluator.Collector` and, when a metric asks for them (effective_rank),
collects the evaluated users' sequence embeddings during the evaluation step. It applies to any RecBole
`Trainer` subclass: `recbole_bt.registry.get_trainer` returns `with_evaluation(<the trainer RecBole would
pick>)`, so RecBole's own models get the new metrics too. `Trainer` is RecBole's default trainer with it.
"""
import functools

import torch
from recbole.trainer import Trainer as RecBoleTrainer

from recbole_bt.evaluator import Collector
from recbole_bt.evaluator.embedding import capture_forward, captured_embedding, sequence_embedding


class EvaluationMixin:
    """Put in front of a RecBole `Trainer` subclass: `class MyTrainer(EvaluationMixin, SomeRecBoleTrainer)`."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.eval_collector = Collector(config)

    def _full_sort_batch_eval(self, batched_data):
        if not self.eval_collector.needs_embeddings:
            return super()._full_sort_batch_eval(batched_data)
        with capture_forward(self.model) as calls:  # reuse the encoder pass of full_sort_predict
            interaction, scores, positive_u, positive_i = super()._full_sort_batch_eval(batched_data)
        embedding = captured_embedding(self.model, interaction, calls)
        if embedding is None:
            embedding = sequence_embedding(self.model, interaction)
        self.eval_collector.embedding_collect(embedding)
        return interaction, scores, positive_u, positive_i

    def _neg_sample_batch_eval(self, batched_data):
        result = super()._neg_sample_batch_eval(batched_data)
        if self.eval_collector.needs_embeddings:
            interaction, row_idx = batched_data[0], batched_data[1]
            first = torch.ones_like(row_idx, dtype=torch.bool)  # one row per user: its first candidate
            first[1:] = row_idx[1:] != row_idx[:-1]
            users = interaction[first.nonzero().squeeze(1).cpu()].to(self.device)
            self.eval_collector.embedding_collect(sequence_embedding(self.model, users))
        return result


class Trainer(EvaluationMixin, RecBoleTrainer):
    """RecBole's `Trainer` with recbole_bt's evaluation."""


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
