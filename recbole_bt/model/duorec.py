r"""
DuoRec
################################################

Reference:
    Ruihong Qiu, Zi Huang, Hongzhi Yin, Zijian Wang. "Contrastive Learning for Representation Degeneration Problem
    in Sequential Recommendation." In WSDM 2022. (SPEC section 4.)

SASRec trained with ``L = L_pred + lmd * L_CL``: the next-item loss of recbole_bt's SASRec (`loss_type` CE, BCE
or SCE, in either `train_mode`), plus InfoNCE (`recbole_bt.loss.info_nce`) between two views of each row's output
at its last position, chosen by `contrast`:

- `us` (unsupervised): the row's output vs a second forward pass of the same row (another dropout mask);
- `su` (supervised): the row's output vs the output of its same-target partner (a training row with the same next
  item, drawn by the dataloader's same-target sampler: `same_target_sampling`, as in BTSRec);
- `us_x` (default, as the original code): the dropout view (a second pass of the row) vs the partner's output.

Similarity `sim` (dot or cos) divided by the temperature `tau`; in-batch negatives (2B - 2 per anchor), with the
rows that share the anchor's target masked out as false negatives. With `lmd: 0` the CL branch is skipped and
training is SASRec's, exactly. A batch of a single row has no negatives: its CL term is 0.

Differences from the original code (github.com/RuihongQiu/DuoRec): it weighs the supervised terms with a second
weight `lmd_sem` (default 0.1, as `lmd`) and names the two-terms variant 'us' and the dropout-only one 'un'; here
one weight `lmd` and the three modes above. Under torch.distributed each rank contrasts its own rows (as the
original: no gathering of the other ranks' rows).
"""

from recbole_bt.loss import info_nce
from recbole_bt.model.sasrec import SASRec
from recbole_bt.model.mixins import SameTargetPartner

CONTRASTS = ("us", "su", "us_x")


class DuoRec(SameTargetPartner, SASRec):
    r"""SASRec + InfoNCE between a dropout view and / or a same-target view of each sequence."""

    loss_types = ("CE", "BCE", "SCE")

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.lmd = config["lmd"]
        self.tau = config["tau"]
        self.sim = config["sim"]
        self.contrast = config["contrast"]
        self.init_partner(config)
        if self.lmd > 0 and self.contrast != "us" and not self.same_target:
            self.logger.warning(
                f"DuoRec contrast {self.contrast!r} with same_target_sampling False: each row's 'partner' is "
                f"itself under another dropout mask (the 'us' view)"
            )

    def calculate_loss(self, interaction):
        if self.lmd == 0:
            return super().calculate_loss(interaction)  # SASRec exactly: no extra pass, no extra randomness
        pred_loss, last = self.next_item_loss(interaction)  # [B H]
        cl_loss = self.lmd * self.contrastive_loss(interaction, last)
        self.loss_terms = {"L_pred": pred_loss.detach(), "lmd * L_CL": cl_loss.detach()}
        return pred_loss + cl_loss

    def dropout_view(self, interaction):
        """The rows' output at their last position from a second forward pass (another dropout mask). [B H]"""
        return self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])

    def contrastive_views(self, interaction, output):
        """The two views [B H] x2 that `contrast` pairs, given the rows' output [B H] of the next-item loss."""
        if self.contrast == "us":
            return output, self.dropout_view(interaction)
        if self.contrast == "su":
            return output, self.partner_output(interaction)
        return self.dropout_view(interaction), self.partner_output(interaction)  # us_x

    def contrastive_loss(self, interaction, output):
        """InfoNCE of the two views over the batch, rows sharing the anchor's target masked out as false
        negatives; 0 for a batch of a single row (no negatives, and no extra forward pass)."""
        if len(output) < 2:
            return output.new_zeros(())
        z_i, z_j = self.contrastive_views(interaction, output)
        return info_nce(z_i, z_j, self.tau, self.sim, targets=interaction[self.POS_ITEM_ID])
