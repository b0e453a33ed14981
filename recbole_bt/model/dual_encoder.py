r"""
DualEncoder
################################################

The baseline BTPretrain's claim is about (SPEC section 2): a two-tower model, user tower = the SASRec encoder
(the same as CLUE's and BTPretrain's), item tower = the item embeddings, pretrained on next-item prediction with
an in-batch sampled softmax (`recbole_bt.loss.in_batch_softmax`: the other rows' targets are the negatives, a
repeated target is masked, `temperature` configurable). Its negatives shrink with the batch, which BTPretrain's
loss does not need. Fine-tuning and the user embeddings go through the same pipeline (`recbole_bt.model.pretrain`).
"""
from recbole_bt.loss import in_batch_softmax
from recbole_bt.model.pretrain import SequencePretrainer


class DualEncoder(SequencePretrainer):
    r"""User tower (SASRec encoder) x item tower (item embeddings), in-batch sampled softmax."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.temperature = config["temperature"]
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float)) or not self.temperature > 0:
            raise ValueError(f"'temperature' must be a number > 0, got {self.temperature!r}")

        # parameters initialization
        self.init_weights()

    def pretrain_loss(self, interaction):
        user = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])  # [B H]
        targets = interaction[self.POS_ITEM_ID]  # [B]
        return in_batch_softmax(user, self.item_embedding(targets), targets, self.temperature)
