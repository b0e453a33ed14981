r"""
CLUE
################################################

Reference:
    Mingxin Cheng et al. "Learning Transferrable User Representations with Sequential Behaviors via Contrastive
    Pre-training." In ICDM 2021. (`../shared/papers/clue_cheng2021.txt`; SPEC section 3.)

SimSiam (Chen & He, CVPR 2021) on user sequences, without negatives: the SASRec encoder f (user representation
from a [UR] token, `user_token`), a projector g (3 FC layers, BatchNorm on each, ReLU between) and a predictor q
(2 FC layers, BatchNorm, bottleneck) on two views of each sequence (by default the same sequence twice: the views
differ only through dropout, the paper's best). Loss ``D(p1, z2) / 2 + D(p2, z1) / 2`` with ``p = q(g(f(x)))``,
``z = g(f(x))``, ``D(p, z) = -cos(p, stopgrad(z))``. ``stop_gradient: False`` and ``predictor: False`` are the
collapse ablations. Then fine-tuning (`recbole_bt.model.pretrain`); `CLUEZero` fine-tunes from random weights.
"""
from torch import nn

from recbole_bt.loss import simsiam_loss
from recbole_bt.model.layers import mlp
from recbole_bt.model.pretrain import SequencePretrainer


class CLUE(SequencePretrainer):
    r"""SimSiam pretraining of the SASRec user encoder, then next-item fine-tuning."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.stop_gradient = config["stop_gradient"]
        self.use_predictor = config["predictor"]
        projector_sizes = config["projector_sizes"]
        predictor_hidden = config["predictor_hidden"]

        # define the heads: pretraining only (fine-tuning drops them)
        if self.train_stage == "pretrain":
            self.projector = mlp([self.hidden_size] + projector_sizes, last_norm=True)  # g
            dim = projector_sizes[-1]
            self.predictor = mlp([dim, predictor_hidden, dim]) if self.use_predictor else nn.Identity()  # q

        # parameters initialization
        self.init_weights()

    def pretrain_loss(self, interaction):
        z_1, z_2 = self.projected_views(interaction)  # [B D] each
        return simsiam_loss(self.predictor(z_1), self.predictor(z_2), z_1, z_2, self.stop_gradient)


class CLUEZero(CLUE):
    r"""CLUE's fine-tuning from random initialisation: the no-pretraining control (``train_stage: finetune``,
    no ``pre_model_path``)."""

    def __init__(self, config, dataset):
        if config["train_stage"] != "finetune" or config["pre_model_path"]:
            raise ValueError(
                "CLUEZero fine-tunes from random weights: it takes train_stage 'finetune' and no pre_model_path "
                f"(got train_stage {config['train_stage']!r}, pre_model_path {config['pre_model_path']!r}); "
                "use model CLUE to pretrain or to fine-tune a checkpoint"
            )
        super().__init__(config, dataset)
