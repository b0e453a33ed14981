r"""
SASRec
################################################

Reference:
    Wang-Cheng Kang, Julian McAuley. "Self-Attentive Sequential Recommendation." In ICDM 2018.

RecBole's SASRec, unchanged in `train_mode: prefix` with `loss_type` CE or BPR (it calls RecBole's code), plus
what the SASRec-family models of recbole_bt share:

- `train_mode: all_positions`: training rows are user windows (`recbole_bt.data.dataset`) and the next-item loss
  is taken at every position that has a target, as the original SASRec trains;
- `loss_type: BCE`: binary cross-entropy with `train_neg_sample_num` uniformly sampled negatives per target
  (the original SASRec's loss), in either mode;
- `loss_type: SCE`: Scalable Cross-Entropy (`recbole_bt.loss`), memory O(n_buckets * bucket sizes), not O(P * N);
- `encode(item_seq, item_seq_len)` -> [B L H], the output at every position; `forward` -> [B H] at the last one;
- speed (issue 16, `benchmarks/speed.py`): `fused_attention` (`recbole_bt.model.attention`: one QKV matmul,
  `scaled_dot_product_attention` with a causal flag instead of a [B 1 L L] mask, one-kernel GELU; the same
  parameters), `fused_last_position` (where only each row's last output is read, `forward`: evaluation,
  BTSRec's partners, CL4SRec's and DuoRec's views, the pretraining views, the last layer computes that position
  only, `recbole_bt.model.attention.encode_at`) and `fused_ce` (`recbole_bt.loss.linear_cross_entropy`:
  full-catalog CE in cache-sized chunks, never the [P N] logits). All are on by default (~) in all_positions and
  off in prefix, where the model is RecBole's SASRec exactly.
"""
import contextlib

import torch
import torch.nn.functional as F
from recbole.model.sequential_recommender.sasrec import SASRec as RecBoleSASRec

from recbole_bt.data.dataset import target_list_field
from recbole_bt.loss import ScalableCrossEntropy, linear_cross_entropy
from recbole_bt.model.attention import encode_at, use_fused_layers

LOSS_TYPES = ("CE", "BCE", "BPR", "SCE")


@contextlib.contextmanager
def _config_value(config, key, value):
    """Show `config[key]` as `value` for the duration of the block (RecBole's __init__ knows only BPR and CE)."""
    original = config[key]
    config[key] = value
    try:
        yield
    finally:
        config[key] = original


EVAL_CHUNK_ROWS = 256


def by_length(forward, item_seq, item_seq_len, chunk_rows=EVAL_CHUNK_ROWS):
    """`forward(item_seq, item_seq_len)` -> [B H] of left-aligned rows, computed in chunks of `chunk_rows` rows of
    similar length, each cut to its longest row; returned in the rows' order."""
    order = torch.argsort(item_seq_len, descending=True)
    outputs = []
    for start in range(0, len(order), chunk_rows):
        rows = order[start : start + chunk_rows]
        width = int(item_seq_len[rows].max())
        outputs.append(forward(item_seq[rows, :width], item_seq_len[rows]))
    return torch.cat(outputs)[torch.argsort(order)]


class SASRec(RecBoleSASRec):
    r"""SASRec with `train_mode` (prefix | all_positions) and `loss_type` CE | BCE | BPR | SCE."""

    supports_all_positions = True
    loss_types = LOSS_TYPES

    def __init__(self, config, dataset):
        loss_type = config["loss_type"]  # one of `loss_types` (each subclass's own list; the config checks it)
        with _config_value(config, "loss_type", "BPR" if loss_type == "BPR" else "CE"):
            super().__init__(config, dataset)

        # load parameters info
        self.loss_type = loss_type
        self.train_neg_sample_num = config["train_neg_sample_num"] or 1
        self.TARGET_LIST = target_list_field(config)
        self._keep_all_positions = False
        self.fused_attention = bool(config["fused_attention"])  # ~ resolved by the config (train_mode's default)
        self.fused_ce = bool(config["fused_ce"])
        self.length_bucketing = bool(config["length_bucketing"])
        self.fused_last_position = bool(config["fused_last_position"])  # ~ resolved: fused_attention's value
        if self.fused_last_position and not self.fused_attention:
            raise ValueError("fused_last_position needs fused_attention: True")
        if self.fused_attention:
            use_fused_layers(self.trm_encoder)
            use_fused_layers(self.dropout)  # the embedding dropout

        # define the SCE loss (CE and BPR are RecBole's loss_fct)
        if loss_type == "SCE":
            self.sce = ScalableCrossEntropy(
                self.n_items, config["n_buckets"], config["bucket_size_x"], config["bucket_size_y"], config["mix_x"],
                config["sce_reduction"],
            )

    def forward(self, item_seq, item_seq_len):
        """The output at each row's last position [B H]. Outside training, with `length_bucketing`, rows go in
        chunks of similar length cut to their longest (the same values; validation ranks every user's whole
        window, most of it padding)."""
        if self.training or not self.length_bucketing:
            return self._forward(item_seq, item_seq_len)
        return by_length(self._forward, item_seq, item_seq_len)

    def _forward(self, item_seq, item_seq_len):
        """RecBole's SASRec forward (subclasses with another user representation override this); with
        `fused_last_position`, its last layer at each row's last position only."""
        if not self.fused_last_position:
            return super().forward(item_seq, item_seq_len)
        positions = torch.arange(item_seq.size(1), device=item_seq.device).expand_as(item_seq)  # [B L]
        return self.transformer_at(item_seq, positions, self.get_attention_mask(item_seq), item_seq_len - 1)

    def embed(self, tokens, positions):
        """RecBole SASRec's input: item + position embeddings, LayerNorm, dropout. [B T H]"""
        return self.dropout(self.LayerNorm(self.item_embedding(tokens) + self.position_embedding(positions)))

    def transformer_at(self, tokens, positions, attention_mask, index):
        """The transformer's output at one position per row, `index` [B]: [B H] (`encode_at` with
        `fused_last_position`, else the full output's row)."""
        hidden = self.embed(tokens, positions)  # [B T H]
        if self.fused_last_position:
            return encode_at(self.trm_encoder, hidden, attention_mask, index)
        output = self.trm_encoder(hidden, attention_mask, output_all_encoded_layers=True)[-1]  # [B T H]
        return output[torch.arange(len(tokens), device=tokens.device), index]

    def get_attention_mask(self, item_seq, bidirectional=False):
        """RecBole's [B 1 L L] mask; None (causal: rows are left-aligned) for the fused attention."""
        if self.fused_attention and not bidirectional:
            return None
        return super().get_attention_mask(item_seq, bidirectional)

    def gather_indexes(self, output, gather_index):
        """RecBole's forward ends with gather_indexes(output, length - 1); `encode` keeps every position."""
        if self._keep_all_positions:
            return output
        return super().gather_indexes(output, gather_index)

    def encode(self, item_seq, item_seq_len):
        """The encoder output at every position. [B L H]"""
        self._keep_all_positions = True
        try:
            return super().forward(item_seq, item_seq_len)
        finally:
            self._keep_all_positions = False

    def calculate_loss(self, interaction):
        if self.TARGET_LIST not in interaction and self.loss_type in ("CE", "BPR"):
            loss = super().calculate_loss(interaction)  # prefix rows: RecBole's SASRec, unchanged
        else:
            loss = self.next_item_loss(interaction)[0]
        self.loss_terms = {"L_pred": loss.detach()}  # named terms of the last batch, for the trainer's NaN check
        return loss

    def next_item_loss(self, interaction):
        """(next-item loss of the batch, each row's output at its last position [B H])."""
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        if self.TARGET_LIST in interaction:  # all-positions rows: a target at every position
            hidden = self.encode(item_seq, item_seq_len)  # [B L H]
            targets = interaction[self.TARGET_LIST]  # [B L]
            mask = targets > 0
            last = self.gather_indexes(hidden, item_seq_len - 1)  # [B H]
            return self.prediction_loss(hidden[mask], targets[mask]), last
        if self.loss_type == "BPR":
            raise NotImplementedError("next_item_loss takes no BPR prefix rows: they need the dataloader's negatives")
        seq_output = self.forward(item_seq, item_seq_len)  # [B H]
        return self.prediction_loss(seq_output, interaction[self.POS_ITEM_ID]), seq_output

    def prediction_loss(self, hidden, targets):
        """Next-item loss of hidden states [P H] against their targets [P], averaged over the P targets."""
        item_emb = self.item_embedding.weight[: self.n_items]  # [N H] (models with extra tokens have more rows)
        if self.loss_type == "CE":
            if self.fused_ce:
                return linear_cross_entropy(hidden, item_emb, targets)
            return self.loss_fct(hidden @ item_emb.T, targets)
        if self.loss_type == "SCE":
            return self.sce(hidden, targets, item_emb)
        negatives = torch.randint(1, self.n_items, (len(targets), self.train_neg_sample_num), device=targets.device)
        pos_score = (hidden * item_emb[targets]).sum(-1)  # [P]
        neg_score = torch.einsum("ph,pkh->pk", hidden, item_emb[negatives])  # [P K]
        if self.loss_type == "BPR":
            return -F.logsigmoid(pos_score.unsqueeze(1) - neg_score).mean()
        pos_loss = F.binary_cross_entropy_with_logits(pos_score, torch.ones_like(pos_score))
        neg_loss = F.binary_cross_entropy_with_logits(neg_score, torch.zeros_like(neg_score), reduction="none")
        return pos_loss + neg_loss.sum(-1).mean()

    def full_sort_predict(self, interaction):
        """Scores of every catalog item [B N] (models with extra tokens, [MASK] or [UR], have more table rows)."""
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])  # [B H]
        return seq_output @ self.item_embedding.weight[: self.n_items].T  # [B N]
