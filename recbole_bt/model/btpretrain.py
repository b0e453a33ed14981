r"""
BTPretrain
################################################

Reference:
    Bradley Green et al. (Liu et al.) "Enhancing User Sequence Modeling through Barlow Twins-based Self-Supervised
    Learning." arXiv 2505.00953, 2025 (only the abstract is public: `../shared/papers/bt-user-seq_liu2025_abstract.txt`;
    SPEC section 2). Jure Zbontar et al. "Barlow Twins: Self-Supervised Learning via Redundancy Reduction." ICML 2021.

Barlow Twins pretraining of the SASRec user encoder: two augmented views of each user sequence
(`augmentations`, the same module as CLUE), a projector MLP with BatchNorm, and `recbole_bt.loss.barlow_twins_loss`
on the two views' projector outputs, standardised over the batch as the original Barlow Twins (no row
l2-normalisation); no negatives anywhere. Then fine-tuning through the same two-stage pipeline as CLUE
(`recbole_bt.model.pretrain`).
"""
from recbole_bt.loss import barlow_twins_loss
from recbole_bt.model.layers import mlp
from recbole_bt.model.pretrain import SequencePretrainer


class BTPretrain(SequencePretrainer):
    r"""Barlow Twins pretraining of the SASRec user encoder, then next-item fine-tuning."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        sizes = config["projector_sizes"]
        self.lambd = config["lambda"] if config["lambda"] is not None else 1 / sizes[-1]
        self.bt_scale = config["bt_scale"]

        # define the projector: pretraining only
        if self.train_stage == "pretrain":
            self.projector = mlp([self.hidden_size] + sizes)

        # parameters initialization
        self.init_weights()

    def pretrain_loss(self, interaction):
        z_1, z_2 = self.projected_views(interaction)  # [B D] each
        return barlow_twins_loss(z_1, z_2, self.lambd, self.bt_scale, normalize_rows=False)
