"""The [UR] token of every prefix in two streams (CLUE's fine-tuning in ``train_mode: all_positions``).

Appending a [UR] token to each prefix of a window of L items means, in one pass, the 2L tokens ``i0 UR i1 UR ...``
under a mask where an item sees the items up to it and a [UR] sees the items up to its own plus itself. That
attention costs [2L 2L] scores per row and per head, four times SASRec's. The same function in two streams
(as XLNet's two-stream attention splits content and query):

- the item stream is SASRec's transformer over the L items, causal (no item ever sees a [UR]);
- the [UR] stream: at every layer, the [UR] after item j attends to the item stream's input to that layer at
  positions 0..j and to itself, with that layer's parameters ([L L] scores plus one self score per query), then
  the layer's feed-forward.

Half the attention scores of the interleaved layout; the same parameters, outputs equal at every real position
(`tests/test_clue.py`). Dropout is drawn per stream (the same distribution as the interleaved pass).
"""
import torch


def _heads(attention, x):
    """[B L H] -> [B heads L d]"""
    batch, length, _ = x.shape
    return x.view(batch, length, attention.num_attention_heads, -1).transpose(1, 2)


def ur_attention(attention, items, urs):
    """One RecBole `MultiHeadAttention` layer's output for the [UR] stream [B L H]: the [UR] at position j attends
    to `items` [B L H] at positions 0..j and to itself (`urs` [B L H]); residual and LayerNorm as RecBole's."""
    batch, length, hidden = urs.shape
    query = _heads(attention, attention.query(urs))  # [B heads L d]
    self_key, self_value = _heads(attention, attention.key(urs)), _heads(attention, attention.value(urs))
    item_key, item_value = _heads(attention, attention.key(items)), _heads(attention, attention.value(items))
    later = torch.ones(length, length, dtype=torch.bool, device=urs.device).triu_(1)  # [L L] items after the [UR]
    query = query / attention.sqrt_attention_head_size
    item_scores = (query @ item_key.transpose(-1, -2)).masked_fill_(later, -10000.0)  # [B heads L L]
    self_scores = (query * self_key).sum(-1, keepdim=True)  # [B heads L 1]
    scores = torch.cat([item_scores, self_scores], dim=-1)  # [B heads L L+1]
    probs = attention.attn_dropout(torch.softmax(scores, dim=-1))
    context = probs[..., :length] @ item_value + probs[..., length:] * self_value  # [B heads L d]
    context = context.transpose(1, 2).reshape(batch, length, hidden)  # [B L H]
    return attention.LayerNorm(attention.out_dropout(attention.dense(context)) + urs)


def encode_two_streams(encoder, items, urs, item_mask):
    """The last layer's [UR] stream [B L H] of a RecBole `TransformerEncoder` (plain or fused), from the embedded
    items [B L H] and [UR] tokens [B L H] (the [UR] after item j at position j + 1); `item_mask` is the item
    stream's causal mask (None on the fused path)."""
    *layers, last = encoder.layer
    for layer in layers:
        urs = layer.feed_forward(ur_attention(layer.multi_head_attention, items, urs))  # this layer's input items
        items = layer(items, item_mask)
    return last.feed_forward(ur_attention(last.multi_head_attention, items, urs))  # the last items unused
