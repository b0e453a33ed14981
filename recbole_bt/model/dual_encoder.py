r"""
DualEncoder
################################################

The baseline BTPretrain's claim is about (SPEC section 2): a two-tower model, user tower = the SASRec encoder
(the same as CLUE's and BTPretrain's), item tower = the item embeddings, pretrained on next-item prediction with
an in-batch sampled softmax, `temperature` configurable. Prefix rows (``train_mode: prefix``): the user vector at
each row's last position against its target, the other rows' targets the negatives, a repeated target masked
(`recbole_bt.loss.in_batch_softmax`). All-positions windows: the user vector at every position with a target
against the batch's distinct targets (`recbole_bt.loss.in_batch_softmax_positions`), so it learns from every
next-item target of the window, as SASRec and BTPretrain do. Its negatives shrink with the batch, which
BTPretrain's loss does not need. Fine-tuning and the user embeddings go through the same pipeline
(`recbole_bt.model.pretrain`).
"""
from recbole_bt.loss import in_batch_softmax, in_batch_softmax_positions
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
        item_seq, item_seq_len = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        if self.TARGET_LIST in interaction:  # all-positions windows: a target at every position
            targets = interaction[self.TARGET_LIST]  # [B L]
            mask = targets > 0
            user = self.encode(item_seq, item_seq_len)[mask]  # [P H]
            return in_batch_softmax_positions(user, targets[mask], self.item_embedding, self.temperature)
        user = self.forward(item_seq, item_seq_len)  # [B H]
        targets = interaction[self.POS_ITEM_ID]  # [B]
        return in_batch_softmax(user, self.item_embedding(targets), targets, self.temperature)
