"""The input of the downstream user tasks: each user's whole training history, and the item that follows it.

Both come from the first validation row of each user: RecBole's validation rows hold the user's items before the
validation target (under leave-one-out: the whole training history, its last ``MAX_ITEM_LIST_LENGTH`` items, as
any input of the encoder) and the target, which is the ``next_item`` task's label. Users without a validation row
(e.g. too short for RecBole's split) take no part in the tasks.
"""
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class UserSequences:
    users: np.ndarray  # [U] user ids
    item_seq: torch.Tensor  # [U L] training histories, left-aligned, zero-padded
    item_seq_len: torch.Tensor  # [U]
    next_item: np.ndarray  # [U] the item after the history

    def __len__(self):
        return len(self.users)


def user_sequences(valid_data, model):
    """The `UserSequences` of every user that has a validation row in `valid_data` (a RecBole dataloader)."""
    inter = valid_data._dataset.inter_feat
    uid = inter[valid_data._dataset.uid_field].numpy()
    users, first = np.unique(uid, return_index=True)  # the first validation row of each user
    first = torch.as_tensor(first)
    return UserSequences(
        users=users,
        item_seq=inter[model.ITEM_SEQ][first],
        item_seq_len=inter[model.ITEM_SEQ_LEN][first],
        next_item=inter[model.POS_ITEM_ID][first].numpy(),
    )
