r"""
BTSRec
################################################

Reference:
    Ivan Razvorotnev, Marina Munkhoeva, Evgeny Frolov. "Barlow Twins for Sequential Recommendation." 2025.
    (`../shared/papers/bt-sr_razvorotnev2025.txt`; SPEC section 1.)

SASRec trained with ``L = L_pred + alpha * L_BT``: the next-item loss of recbole_bt's SASRec (`loss_type` CE, BCE
or SCE, in either `train_mode`), plus a Barlow Twins loss between each row's output at its last position and the
same output for a partner row with the same target (the dataloader's same-target sampler: `same_target_sampling`).
With `alpha: 0` the BT branch is skipped and training is SASRec's, exactly.
"""
from torch import nn

from recbole_bt.loss import BT_SCALES, barlow_twins_loss, world_size
from recbole_bt.model.layers import mlp
from recbole_bt.model.sasrec import SASRec
from recbole_bt.model.views import SameTargetPartner


class BTSRec(SameTargetPartner, SASRec):
    r"""SASRec + Barlow Twins between sequences that share their next item."""

    loss_types = ("CE", "BCE", "SCE")

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.alpha = config["alpha"]
        self.lambd = config["lambda"]
        self.bt_scale = config["bt_scale"]
        self.init_partner(config)
        self._check_bt_options(config)
        if not self.same_target:
            self.logger.warning("BTSRec with same_target_sampling False: each row's positive is itself (dropout view)")
        if self.alpha > 0 and config["train_batch_size"] < self.hidden_size:
            self.logger.warning(
                f"BTSRec: train_batch_size {config['train_batch_size']} < hidden_size {self.hidden_size}: the BT "
                f"cross-correlation of a batch has rank < {self.hidden_size} and cannot reach the identity"
            )

        # define the projector (none by default: BT on the encoder output itself)
        sizes = config["bt_projector"]
        self.projector = mlp([self.hidden_size] + list(sizes)) if sizes else nn.Identity()

    def _check_bt_options(self, config):
        for key in ("alpha", "lambda"):
            value = config[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"'{key}' must be a number >= 0, got {value!r}")
        if self.bt_scale not in BT_SCALES:
            raise ValueError(f"'bt_scale' must be one of {list(BT_SCALES)}, got {self.bt_scale!r}")
        if config["train_batch_size"] < 2:
            raise ValueError(
                f"train_batch_size {config['train_batch_size']} is too small for Barlow Twins, which standardises "
                f"over the batch: use at least 2 (and ideally >= hidden_size)"
            )
        sizes = config["bt_projector"]
        if sizes and (not isinstance(sizes, list) or not all(isinstance(s, int) and s > 0 for s in sizes)):
            raise ValueError(f"'bt_projector' must be a list of positive layer sizes or ~, got {sizes!r}")

    def calculate_loss(self, interaction):
        if self.alpha == 0:
            return super().calculate_loss(interaction)  # SASRec exactly: no partner pass, no extra randomness
        pred_loss, last = self.next_item_loss(interaction)  # [B H]
        bt_loss = self.alpha * self.bt_loss(last, self.partner_output(interaction))
        self.loss_terms = {"L_pred": pred_loss.detach(), "alpha * L_BT": bt_loss.detach()}
        return pred_loss + bt_loss

    def bt_loss(self, z_a, z_b):
        """Barlow Twins loss of the two views [B H]; 0 for a final batch of a single row (no batch statistics)."""
        if len(z_a) < 2:
            return z_a.new_zeros(())
        loss = barlow_twins_loss(self.projector(z_a), self.projector(z_b), self.lambd, self.bt_scale)
        world = world_size()
        if world > 1:
            # each rank's gradient covers its own rows of the global loss; DDP averages gradients over ranks,
            # so scale by the world size to keep the BT gradient that of the global batch (same value)
            loss = loss * world - loss.detach() * (world - 1)
        return loss
