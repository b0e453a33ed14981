"""Shared pieces of the models that train on augmented views of sequences (CL4SRec, and the pretraining
models of `recbole_bt.model.pretrain`).

- `SeededGenerator`: a mixin giving a model its own `torch.Generator` for augmentations, seeded with RecBole's
  ``seed``, so that the views are reproducible and drawing them never shifts torch's global random stream
  (initialisation, dropout).
- `SameTargetPartner`: a mixin for the models that pair each training row with a same-target partner row
  (BTSRec, DuoRec; `same_target_sampling`, recbole_bt/data/sampler.py).
"""
import torch

from recbole_bt.data.dataloader import partner_fields
from recbole_bt.model.sasrec import by_length


class SeededGenerator:
    """Mixin: `generator(device)`, the model's own random generator for augmentations.

    The class using it calls `init_generator(config)` in its ``__init__``. The generator is created on first use
    on the device of the batch (and created afresh, from the seed, if the model moves to another device)."""

    def init_generator(self, config):
        """``self.seed`` = RecBole's ``seed``; the generator's seed adds the process's rank under DDP (as RecBole's
        `init_seed` does), so that the ranks draw different views of their different rows."""
        self.seed = config["seed"]
        self._generator_seed = self.seed + (config["local_rank"] or 0)
        self._generator = None

    def generator(self, device):
        """The model's random generator for augmentations, seeded with RecBole's `seed` (+ the DDP rank)."""
        if self._generator is None or self._generator.device != torch.device(device):
            self._generator = torch.Generator(device=device).manual_seed(self._generator_seed)
        return self._generator


class SameTargetPartner:
    """Mixin: `init_partner(config)` (in ``__init__``) and `partner_output(interaction)`."""

    def init_partner(self, config):
        self.same_target = bool(config["same_target_sampling"])
        self.PARTNER_SEQ, self.PARTNER_SEQ_LEN = partner_fields(config)
        self.partner_chunk_rows = config["partner_chunk_rows"] or 0

    def partner_output(self, interaction):
        """The encoder output at the last position of each row's same-target partner [B H] (the row itself, under
        another dropout mask, without same-target sampling). With length bucketing the partners, whose lengths a
        batch cannot choose, go in chunks of `partner_chunk_rows` rows of similar length, each cut to its longest."""
        if self.PARTNER_SEQ not in interaction:
            return self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        item_seq, item_seq_len = interaction[self.PARTNER_SEQ], interaction[self.PARTNER_SEQ_LEN]
        if self.training and self.length_bucketing and self.partner_chunk_rows:
            return by_length(self._forward, item_seq, item_seq_len, self.partner_chunk_rows)
        return self.forward(item_seq, item_seq_len)
