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

Under torch.distributed (RecBole's DDP), `barlow_twins_loss` computes its statistics over the rows of all ranks
and DDP's average of the ranks' gradients is the single-process gradient of that global batch: BT needs no
rescaling, as the next-item loss (a mean over each rank's equal share of the rows) needs none.
"""
import torch
from torch import nn

from recbole_bt.loss import barlow_twins_loss, global_sum, world_size
from recbole_bt.model.layers import mlp
from recbole_bt.model.sasrec import SASRec
from recbole_bt.model.mixins import SameTargetPartner


# Fewest rows (of all ranks together) on which the BT term is computed; a smaller batch (the epoch's last) gets
# a BT term of 0, said once per run. 1 row has no standard deviation. 2 rows centre every dimension to (+a, -a),
# standardised to +-1/sqrt(2) whatever the embeddings: C is all +-1, its gradient is 0 (up to eps) and its value
# is a constant of the sign pattern, which only adds noise to the logged loss. From 3 rows on the batch carries
# a gradient (C of rank <= B - 1, which the rank warning covers for the regular batches), so it is kept.
MIN_BT_ROWS = 3


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
        if not self.same_target:
            self.logger.warning("BTSRec with same_target_sampling False: each row's positive is itself (dropout view)")
        self._small_batch_logged = False  # the BT term of a batch < MIN_BT_ROWS rows is 0: said once per run

        # define the projector (none by default: BT on the encoder output itself)
        sizes = config["bt_projector"]
        self.projector = mlp([self.hidden_size] + list(sizes)) if sizes else nn.Identity()
        self.bt_dim = sizes[-1] if sizes else self.hidden_size  # D, the width BT sees
        if self.alpha > 0:
            self._warn_rank(config)

    def _warn_rank(self, config):
        """One warning line when the BT batch has <= D rows: the centred cross-correlation of B rows has rank
        <= B - 1 < D and cannot reach the identity. Under DDP the BT batch is that of all ranks together
        (RecBole gives each rank train_batch_size // world rows)."""
        world = 1 if config["single_spec"] else config["world_size"]
        rows = world * max(1, config["train_batch_size"] // world)
        if rows <= self.bt_dim:
            width = "the bt_projector output" if config["bt_projector"] else "hidden_size"
            self.logger.warning(
                f"BTSRec: the BT batch has {rows} rows <= D = {self.bt_dim} ({width}): its centred cross-correlation "
                f"has rank <= {rows - 1} < D and cannot reach the identity; use train_batch_size > {self.bt_dim}"
            )

    def calculate_loss(self, interaction):
        if self.alpha == 0:
            return super().calculate_loss(interaction)  # SASRec exactly: no partner pass, no extra randomness
        pred_loss, last = self.next_item_loss(interaction)  # [B H]
        bt_loss = self.alpha * self.bt_loss(last, self.partner_output(interaction))
        self.loss_terms = {"L_pred": pred_loss.detach(), "alpha * L_BT": bt_loss.detach()}
        return pred_loss + bt_loss

    def bt_loss(self, z_a, z_b):
        """Barlow Twins loss of the two views [B H]; 0 for a batch too small for BT statistics: fewer than
        MIN_BT_ROWS rows over all ranks, or a rank with a single row (its projector BatchNorm would fail), which
        the log says once per run. Under DDP every rank takes the same decision (the counts are global)."""
        rows, single_row_ranks = len(z_a), int(len(z_a) < 2)
        if world_size() > 1:
            counts = global_sum(z_a.new_tensor([rows, single_row_ranks], dtype=torch.float32))  # [2]
            rows, single_row_ranks = int(counts[0]), int(counts[1])
        if rows < MIN_BT_ROWS or single_row_ranks:
            if not self._small_batch_logged:
                self._small_batch_logged = True
                self.logger.info(
                    f"BTSRec: Barlow Twins needs a batch of >= {MIN_BT_ROWS} rows (and >= 2 on each process); a "
                    f"batch of {rows} gets a BT term of 0 (said once per run: an epoch's short last batch)"
                )
            return z_a.new_zeros(())
        # the global-batch loss; DDP's average of the ranks' gradients is its single-process gradient
        return barlow_twins_loss(self.projector(z_a), self.projector(z_b), self.lambd, self.bt_scale)
