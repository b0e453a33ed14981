"""Seen-item masking for the full-ranking evaluation of sequential models (`eval_mask_seen`), and the protocol name.

RecBole 1.2.1 ranks the whole catalog for a sequential model's validation and test rows without removing anything
(`FullSortEvalDataLoader` gives such rows no history); SASRec+, gSASRec, eSASRec and the BT-SR reference code
remove the items the user has already interacted with. With ``eval_mask_seen: True`` every item of the user's
whole history before the row's target (all of it, not only the last ``MAX_ITEM_LIST_LENGTH`` items that the model
reads) gets the score -inf, in any split of RecBole's augmented rows (leave-one-out, the global temporal split).
A target the user had already consumed before is masked too (counted as a miss, as RecBole does for general
models): on datasets with repeat consumption, masking is a different question, not a free gain.

How: `add_seen_positions` runs on RecBole's augmented rows (one per target, each user's rows in time order) and
keeps every user's history once (`dataset.seen_items`, with `dataset.seen_start[uid]`), plus in each row the end of
its seen part (field ``seen_end``); the rows keep it through any split. `SeenMaskFullSortEvalDataLoader` turns a
batch's rows into RecBole's ``history_index`` (row, item) pairs, which RecBole's trainer sets to -inf.

`describe_protocol(config)` names the protocol (split, candidates, masking) for every results line and table.
"""
import numpy as np
import torch
from recbole.data.dataloader import FullSortEvalDataLoader
from recbole.utils import FeatureSource, FeatureType

from recbole_bt.data.histories import history_positions
from recbole_bt.data.split import SPLIT_MODE
from recbole_bt.errors import ConfigError

SEEN_FIELD = "seen_end"


def seen_positions(uid, target, item_list, item_length):
    """Each user's history and where each row's seen part of it ends.

    Args:
        uid, target, item_length (numpy.ndarray): [N] user, target item and input length of RecBole's augmented
            rows; each user's rows in time order (users in any order), its first row's input its first item(s).
        item_list (numpy.ndarray): [N L] the rows' inputs, left-aligned.

    Returns:
        tuple: (start [max uid + 2], flat [T], end [N]): the histories one after the other in `flat` (each user's
        first row's input, then every row's target), user u's from flat[start[u]]; row i has seen
        flat[start[uid[i]]:end[i]].
    """
    users, offsets, flat, end = history_positions(uid, target, item_list, item_length)
    start = np.zeros(int(uid.max(initial=0)) + 2, dtype=np.int64)
    start[users] = offsets[:-1]
    return start, flat, end


def add_seen_positions(dataset):
    """Record, on RecBole's augmented rows of `dataset`, every user's history and each row's seen part."""
    feat = dataset.inter_feat
    start, flat, end = seen_positions(
        feat[dataset.uid_field].numpy(),
        feat[dataset.iid_field].numpy(),
        feat[dataset.item_id_list_field].numpy(),
        feat[dataset.item_list_length_field].numpy(),
    )
    keep_histories(dataset, start, flat)
    feat[SEEN_FIELD] = torch.from_numpy(end)


def keep_histories(dataset, start, flat):
    """Keep every user's history on `dataset` (user u's from flat[start[u]]) for the rows' `SEEN_FIELD` ends to
    index: `add_seen_positions`, or `row_builder: interactions` (dataset.py), whose rows end at their target."""
    dataset.seen_start, dataset.seen_items = torch.from_numpy(start), torch.from_numpy(flat)
    dataset.set_field_property(SEEN_FIELD, FeatureType.FLOAT, FeatureSource.INTERACTION, 1)


def seen_index(dataset, interaction):
    """RecBole's ``history_index`` of a batch of rows: (row [S], item [S]) for every item each row has seen."""
    uid = interaction[dataset.uid_field]
    start, end = dataset.seen_start[uid], interaction[SEEN_FIELD]  # [B]
    lengths = end - start
    rows = torch.repeat_interleave(torch.arange(len(uid)), lengths)  # [S]
    within = torch.arange(len(rows)) - torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
    return rows, dataset.seen_items[torch.repeat_interleave(start, lengths) + within]


class SeenMaskFullSortEvalDataLoader(FullSortEvalDataLoader):
    """RecBole's full-ranking dataloader of sequential rows, with each row's seen items as its history mask."""

    def __init__(self, config, dataset, sampler, shuffle=False):
        if SEEN_FIELD not in dataset.inter_feat:
            raise ConfigError(
                "eval_mask_seen needs the rows RecBole augments from the interactions; with benchmark_filename "
                "(pre-split files) they are not built: set eval_mask_seen: False"
            )
        super().__init__(config, dataset, sampler, shuffle=shuffle)

    def collate_fn(self, index):
        interaction, _, positive_u, positive_i = super().collate_fn(index)
        return interaction, seen_index(self._dataset, interaction), positive_u, positive_i


def describe_protocol(config, short=False):
    """The evaluation protocol in words: split, candidates, seen-item masking (``short``: a few words)."""
    split = config["eval_args"]["split"]
    mode = config["eval_args"]["mode"]
    modes = set(mode.values()) if isinstance(mode, dict) else {mode}
    mode = modes.pop() if len(modes) == 1 else f"valid {mode.get('valid')} / test {mode.get('test')}"
    masked = bool(config["eval_mask_seen"])
    if isinstance(split, dict) and SPLIT_MODE in split:
        post_cut = "gts_test_history" in config and config["gts_test_history"] == "post_cut"
        name = f"GTS {split[SPLIT_MODE]}" + (", test input after t* only" if post_cut else "")
        long_name = f"global temporal split (GTS {split[SPLIT_MODE]}" + (
            ", gts_test_history post_cut: a test user's input is their interactions at or after t* only)"
            if post_cut else ")")  # fmt: skip
    elif isinstance(split, dict) and "LS" in split:
        name, long_name = "leave-one-out", "leave-one-out (last item test, second-to-last validation)"
    elif isinstance(split, dict) and "RS" in split:
        name = long_name = f"ratio split {split['RS']}"
    else:
        name = long_name = f"split {split}"
    if mode == "full":
        candidates = "full ranking"
    else:
        candidates = f"{mode} candidates"
    if short:
        return f"{name}, {candidates}, seen items {'masked' if masked else 'not masked'}"
    mask = "seen items masked (eval_mask_seen)" if masked else "seen items not masked (RecBole's default)"
    return f"{long_name}, {candidates} of the catalog, {mask}"
