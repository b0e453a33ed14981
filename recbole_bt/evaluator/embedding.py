"""The user / sequence embedding that `effective_rank` measures, for any model.

The documented method, in this order:
1. the model's own `sequence_embedding(interaction)` -> [B D], if it defines one;
2. sequential models (RecBole's SequentialRecommender, e.g. the SASRec family): `forward(item_seq, item_seq_len)`
   -> [B D], the representation their `predict` / `full_sort_predict` score items with;
3. general models with a user embedding table `user_embedding` (BPR, ...): its row for each user.

During full-ranking evaluation the trainer does not run the encoder twice: `capture_forward` records the
`forward(item_seq, item_seq_len)` call that `full_sort_predict` makes anyway (`captured_embedding`).
"""
import contextlib

import torch
from recbole.model.abstract_recommender import SequentialRecommender
from torch import nn

from recbole_bt.errors import ConfigError


def sequence_embedding(model, interaction):
    """[B D] embedding of the users / sequences of `interaction`, by the documented method above."""
    name = type(model).__name__
    if callable(getattr(model, "sequence_embedding", None)):
        embedding, origin = model.sequence_embedding(interaction), f"{name}.sequence_embedding(interaction)"
    elif isinstance(model, SequentialRecommender):
        origin = f"{name}.forward(item_seq, item_seq_len)"
        try:
            embedding = model.forward(interaction[model.ITEM_SEQ], interaction[model.ITEM_SEQ_LEN])
        except TypeError as e:  # a forward with another signature (BERT4Rec's takes the sequence only)
            raise ConfigError(
                f"metric effective_rank needs one embedding per user, and {origin} fails ({e}): give {name} "
                f"a method sequence_embedding(interaction) -> [batch, dim]"
            ) from None
    elif isinstance(getattr(model, "user_embedding", None), nn.Embedding):
        return model.user_embedding(interaction[model.USER_ID])
    else:
        raise ConfigError(
            f"metric effective_rank needs user embeddings, and {name} exposes none: give it a method "
            f"sequence_embedding(interaction) -> [batch, dim]"
        )
    if not isinstance(embedding, torch.Tensor) or embedding.dim() != 2 or len(embedding) != len(interaction):
        shape = tuple(embedding.shape) if isinstance(embedding, torch.Tensor) else type(embedding).__name__
        raise ConfigError(
            f"metric effective_rank needs one embedding per user, [{len(interaction)}, dim], but {origin} "
            f"returns {shape}: give {name} a method sequence_embedding(interaction) -> [batch, dim]"
        )
    return embedding


@contextlib.contextmanager
def capture_forward(model):
    """Record the (args, output) of every `model.forward(...)` call made inside the block."""
    calls = []
    original = model.forward

    def forward(*args, **kwargs):
        output = original(*args, **kwargs)
        calls.append((args, output))
        return output

    model.forward = forward
    try:
        yield calls
    finally:
        del model.forward  # back to the class's method


def captured_embedding(model, interaction, calls):
    """The output of the one `forward(item_seq, item_seq_len)` call in `calls` made on `interaction`'s own
    sequences, if that is what happened (else None: the caller computes `sequence_embedding`)."""
    if callable(getattr(model, "sequence_embedding", None)) or not isinstance(model, SequentialRecommender):
        return None
    if len(calls) != 1:
        return None
    args, output = calls[0]
    item_seq = interaction[model.ITEM_SEQ]
    if (
        len(args) == 2
        and isinstance(output, torch.Tensor)
        and output.dim() == 2
        and len(output) == len(item_seq)
        and args[0].shape == item_seq.shape
        and torch.equal(args[0], item_seq)
        and torch.equal(args[1], interaction[model.ITEM_SEQ_LEN])
    ):
        return output
    return None
