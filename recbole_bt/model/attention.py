"""The fused transformer path of the SASRec family (`fused_attention: True`): the same parameters, the same
function at every real position, fewer and cheaper kernels.

RecBole's `MultiHeadAttention` builds a [B 1 L L] additive mask per batch, runs three projections, two batched
matmuls, an add, a softmax and a dropout over [B heads L L] tensors (memory-bound on a CPU: at L = 200 these
passes cost more than the matmuls), and its `FeedForward` computes GELU in five elementwise kernels.
`FusedMultiHeadAttention` instead:

- projects Q, K and V with one matmul (the three weight matrices concatenated on the fly; parameter names and
  checkpoints are RecBole's);
- calls `torch.nn.functional.scaled_dot_product_attention` (flash kernel on CPU and CUDA) with `is_causal=True`
  when the model passes the mask `None`: rows are left-aligned (zero padding on the right), so under a causal
  mask a real position never sees a padded one, and RecBole's padding mask changes nothing there (outputs at
  padded positions differ; no loss or score reads them); an explicit mask (e.g. CLUE's [UR] layout) is passed
  through as RecBole's additive mask;
- applies attention-probability dropout, when training with `attn_dropout_prob > 0`, on the explicit
  probabilities (no fused CPU kernel drops attention weights), with `drop_mask`'s packed random bits (the 1 / (1 - p) scale on the
  [B heads L d] output, not on the [B heads L L] probabilities).

`encode_at(encoder, hidden, mask, index)` (``fused_last_position``): the encoder's output at one position per row,
with the last layer computed at that position only (the output `forward` reads: each row's last item, or CLUE's
[UR] token); the same function, its last layer's dropout drawn for that position only.

`use_fused_layers(module)` switches the RecBole `TransformerEncoder` layers inside `module` to this class, their
feed-forward activation to `torch.nn.functional.gelu` (one kernel, the same exact-erf GELU) and their dropouts to
`FastDropout` (the packed random bits), in place: the parameters and their initialisation are untouched. Under
bf16 autocast the flash attention kernel runs in float32 (its CPU bfloat16 kernel is several times slower).
"""
import math

import torch
import torch.nn.functional as F
from recbole.model.layers import FeedForward, MultiHeadAttention

_GELU = {"gelu": F.gelu, "relu": F.relu, "swish": F.silu}


def drop_mask(shape, p, device):
    """(mask of the entries to drop [shape], the scale 1 / (1 - p') of the kept ones) for inverted dropout, from
    16-bit slices of 64-bit random integers: four draws per random number, about 6x cheaper than `bernoulli_` on
    a CPU. p' is `p` rounded to a multiple of 1/65536."""
    threshold = round(p * 65536)
    n = math.prod(shape)
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), 2**63 - 1)  # all 64 bits
    drop = bits.view(torch.int16)[:n].view(shape) < threshold - 32768  # int16 is uniform in [-32768, 32768)
    return drop, 65536 / (65536 - threshold)


class FusedMultiHeadAttention(MultiHeadAttention):
    """RecBole's `MultiHeadAttention` (same parameters) on `scaled_dot_product_attention`; mask None = causal."""

    def forward(self, input_tensor, attention_mask):
        batch, length, hidden = input_tensor.shape
        weight = torch.cat([self.query.weight, self.key.weight, self.value.weight])  # [3H H]
        bias = torch.cat([self.query.bias, self.key.bias, self.value.bias])  # [3H]
        qkv = F.linear(input_tensor, weight, bias).view(batch, length, 3, self.num_attention_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # [B heads L d] each
        p = self.attn_dropout.p if self.training else 0.0
        if p == 0:  # the CPU flash kernel is several times slower in bfloat16 than in float32: keep it in float32
            with torch.autocast(q.device.type, enabled=False):
                mask = attention_mask if attention_mask is None else attention_mask.float()
                context = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask,
                                                         is_causal=attention_mask is None)  # fmt: skip
        else:
            context = self._dropout_attention(q, k, v, attention_mask, p)  # [B heads L d]
        context = context.transpose(1, 2).reshape(batch, length, hidden)  # [B L H]
        hidden_states = self.out_dropout(self.dense(context))
        return self.LayerNorm(hidden_states + input_tensor)

    def forward_at(self, input_tensor, attention_mask, index):
        """`forward` at one query position per row, `index` [B]: [B 1 H], keys and values from every position
        (the same function as `forward(...)[arange(B), index]`, with fewer random draws when dropping)."""
        batch, length, hidden = input_tensor.shape
        rows = torch.arange(batch, device=input_tensor.device)
        query_input = input_tensor[rows, index].unsqueeze(1)  # [B 1 H]
        q = self.query(query_input).view(batch, 1, self.num_attention_heads, -1).transpose(1, 2)  # [B heads 1 d]
        weight = torch.cat([self.key.weight, self.value.weight])  # [2H H]
        bias = torch.cat([self.key.bias, self.value.bias])
        kv = F.linear(input_tensor, weight, bias).view(batch, length, 2, self.num_attention_heads, -1)
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)  # [B heads L d] each
        if attention_mask is None:  # causal: the query at `index` sees the keys up to it
            seen = torch.arange(length, device=index.device) <= index.unsqueeze(1)  # [B L]
            mask = torch.where(seen, 0.0, -10000.0).to(q.dtype)[:, None, None, :]  # [B 1 1 L]
        else:  # RecBole's additive mask [B 1 L L] (or broadcastable): the query's row
            mask = attention_mask.expand(batch, -1, length, length)[rows, :, index].unsqueeze(2).to(q.dtype)
        p = self.attn_dropout.p if self.training else 0.0
        scores = q @ k.transpose(-1, -2) / self.sqrt_attention_head_size + mask  # [B heads 1 L]
        probs = torch.softmax(scores, dim=-1)
        if p > 0:
            drop, scale = drop_mask(probs.shape, p, probs.device)
            probs = probs.masked_fill(drop, 0.0) * scale
        context = (probs @ v).transpose(1, 2).reshape(batch, 1, hidden)  # [B 1 H]
        hidden_states = self.out_dropout(self.dense(context))
        return self.LayerNorm(hidden_states + query_input)

    def _dropout_attention(self, q, k, v, attention_mask, p):
        """softmax(q k^T / sqrt(d) + mask) with dropout, times v; the scale and the mask ride in one baddbmm."""
        batch, heads, length, dim = q.shape
        if attention_mask is None:
            mask = torch.full((length, length), -10000.0, dtype=q.dtype, device=q.device).triu_(1)  # causal [L L]
        else:
            mask = attention_mask.expand(batch, heads, length, length).reshape(batch * heads, length, length)
        scores = torch.baddbmm(mask.to(q.dtype), q.reshape(-1, length, dim), k.reshape(-1, length, dim).transpose(1, 2),
                               alpha=1 / self.sqrt_attention_head_size)  # [B*heads L L]  # fmt: skip
        drop, scale = drop_mask(scores.shape, p, scores.device)
        probs = torch.softmax(scores, dim=-1).masked_fill(drop, 0.0)  # dropped; the 1 / (1 - p) goes on the output
        return (probs @ v.reshape(-1, length, dim) * scale).view(batch, heads, length, dim)


class FastDropout(torch.nn.Dropout):
    """`nn.Dropout` with `drop_mask`'s packed random bits instead of `bernoulli_`."""

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        drop, scale = drop_mask(x.shape, self.p, x.device)
        return x.masked_fill(drop, 0.0) * scale


def encode_at(encoder, hidden_states, attention_mask, index):
    """The output of a fused RecBole `TransformerEncoder` at one position per row, `index` [B]: [B H]. Every layer
    but the last runs over all positions; the last one computes the indexed position only (its query; keys and
    values from all positions), the one output that `forward` reads: 1 / L of that layer's attention queries,
    output projection and feed-forward."""
    *layers, last = encoder.layer
    for layer in layers:
        hidden_states = layer(hidden_states, attention_mask)  # [B L H]
    attended = last.multi_head_attention.forward_at(hidden_states, attention_mask, index)  # [B 1 H]
    return last.feed_forward(attended).squeeze(1)  # [B H]


def use_fused_layers(encoder):
    """Switch a RecBole `TransformerEncoder` (or a model holding one) to the fused path, in place: attention,
    one-kernel activations, `FastDropout` (parameters untouched)."""
    for module in encoder.modules():
        if type(module) is torch.nn.Dropout:
            module.__class__ = FastDropout
        if type(module) is MultiHeadAttention:
            module.__class__ = FusedMultiHeadAttention
        elif type(module) is FeedForward:
            act = getattr(module.intermediate_act_fn, "__name__", None)
            if act in _GELU:
                module.intermediate_act_fn = _GELU[act]
    return encoder
