"""Shared pieces of the models that train on augmented views of sequences (CL4SRec, and the pretraining
models of `recbole_bt.model.pretrain`).

- `SeededGenerator`: a mixin giving a model its own `torch.Generator` for augmentations, seeded with RecBole's
  ``seed``, so that the views are reproducible and drawing them never shifts torch's global random stream
  (initialisation, dropout).
"""
import torch


class SeededGenerator:
    """Mixin: `generator(device)`, the model's own random generator for augmentations.

    The class using it sets ``self.seed`` (RecBole's ``seed``) and ``self._generator = None`` in its ``__init__``.
    The generator is created on first use on the device of the batch (and created afresh, from the seed, if the
    model moves to another device)."""

    def generator(self, device):
        """The model's random generator for augmentations, seeded with RecBole's `seed`."""
        if self._generator is None or self._generator.device != torch.device(device):
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return self._generator
