r"""
CL4SRec
################################################

Reference:
    Xu Xie, Fei Sun, Zhaoyang Liu, Shiwen Wu, Jinyang Gao, Jiandong Zhang, Bolin Ding, Bin Cui.
    "Contrastive Learning for Sequential Recommendation." In ICDE 2022. (SPEC section 4.)

SASRec trained with ``L = L_pred + lmd * L_cl``: the next-item loss of recbole_bt's SASRec (`loss_type` CE, BCE,
BPR or SCE, in either `train_mode`), plus InfoNCE between two augmented views of each training sequence.

- Views: per sequence, two distinct operations of ``augmentations`` (crop eta, mask gamma, reorder beta in the
  paper; `recbole_bt.data.augment.Augmenter.pair`), drawn from the model's own generator, seeded with RecBole's
  ``seed``. The views are new tensors: the batch, and the dataloader's stored sequences behind it, are never
  written (the public RecBole ports augment in place and corrupt the main loss's input over the epochs).
- User representation of a view: the encoder's output at its last item (`forward`, [B H]).
- L_cl: `recbole_bt.loss.info_nce` over the 2B views, each view's positive its sequence's other view and its
  negatives the other 2B - 2 views of the batch; similarity ``sim`` (dot | cos) divided by ``tau``. A final batch
  of a single row has no negatives: L_cl = 0.
- [MASK] = n_items: the item table has one row more than the catalog; items are scored against the catalog's rows
  only, so next-item prediction is SASRec's.

With ``lmd: 0`` the contrastive branch is skipped (no views, no extra randomness) and training is SASRec's,
exactly: the catalog's rows are initialised as SASRec's, the [MASK] row from the model's own seeded generator.
"""
import torch
from torch import nn

from recbole_bt.data.augment import Augmenter
from recbole_bt.errors import ConfigError
from recbole_bt.loss import SIMILARITIES, info_nce
from recbole_bt.model.sasrec import SASRec
from recbole_bt.model.mixins import SeededGenerator


class CL4SRec(SeededGenerator, SASRec):
    r"""SASRec + InfoNCE between two augmented views (crop / mask / reorder) of each sequence."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.lmd = config["lmd"]
        self.tau = config["tau"]
        self.sim = config["sim"]
        self.init_generator(config)
        self.MASK_ID = self.n_items
        try:
            self.augmenter = Augmenter(config["augmentations"], mask_id=self.MASK_ID)
        except ConfigError as e:
            raise ValueError(f"'augmentations': {e}") from None

        # define layers: the item table with a [MASK] row. SASRec's rows are kept as initialised, and the [MASK]
        # row is drawn from a generator of its own, so that torch's global random stream is SASRec's
        weight = torch.empty(self.n_items + 1, self.hidden_size)
        with torch.no_grad():
            weight[: self.n_items] = self.item_embedding.weight
            weight[self.MASK_ID].normal_(0.0, self.initializer_range, generator=torch.Generator().manual_seed(self.seed))
        self.item_embedding = nn.Embedding(self.n_items + 1, self.hidden_size, padding_idx=0, _weight=weight)

    def _check_cl_options(self, config):
        if isinstance(self.lmd, bool) or not isinstance(self.lmd, (int, float)) or not self.lmd >= 0:  # NaN too
            raise ValueError(f"'lmd' must be a number >= 0, got {self.lmd!r}")
        if isinstance(self.tau, bool) or not isinstance(self.tau, (int, float)) or not self.tau > 0:
            raise ValueError(f"'tau' must be a number > 0, got {self.tau!r}")
        if self.sim not in SIMILARITIES:
            raise ValueError(f"Make sure 'sim' in {list(SIMILARITIES)}! (got {self.sim!r})")

    def views(self, interaction):
        """Two augmented views (item_seq, item_seq_len) of every sequence of the batch, made by two distinct
        operations per sequence; the batch is untouched."""
        item_seq, item_seq_len = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        return self.augmenter.pair(item_seq, item_seq_len, self.generator(item_seq.device))

    def cl_loss(self, interaction):
        """InfoNCE between the two views' user representations [B H], in-batch negatives; 0 for a single row."""
        if len(interaction[self.ITEM_SEQ]) < 2:
            return self.item_embedding.weight.new_zeros(())
        (seq_1, len_1), (seq_2, len_2) = self.views(interaction)
        z_1 = self.forward(seq_1, len_1)  # [B H]
        z_2 = self.forward(seq_2, len_2)  # [B H]
        return info_nce(z_1, z_2, self.tau, self.sim)

    def calculate_loss(self, interaction):
        if self.loss_type == "BPR" and self.TARGET_LIST not in interaction:
            pred_loss = super().calculate_loss(interaction)  # RecBole's, with the dataloader's negatives
        else:
            pred_loss = self.next_item_loss(interaction)[0]  # scores against the catalog's rows only
        self.loss_terms = {"L_pred": pred_loss.detach()}
        if self.lmd == 0:
            return pred_loss  # SASRec exactly: no views, no extra randomness
        cl_loss = self.lmd * self.cl_loss(interaction)
        self.loss_terms["lmd * L_cl"] = cl_loss.detach()
        return pred_loss + cl_loss
