"""Training rows for SASRec-family models: RecBole's prefix rows, or one row per user window (all positions).

`train_mode: prefix` is RecBole's SequentialDataset unchanged: one row per (prefix, target) pair, the loss at the
last position. `train_mode: all_positions` replaces the *training* rows only (validation and test stay RecBole's
prefix rows and full ranking, so numbers compare across modes) by user windows, as the original SASRec, the BT-SR
reference code and the SCE paper train:

- each user's training history h (every training target, plus the item before the first one) gives the pairs
  (h[i] -> h[i+1]); they are cut into windows of `MAX_ITEM_LIST_LENGTH` pairs from the most recent backwards,
  one window ending every `train_stride` pairs, so windows overlap when the stride is shorter than the window;
- a row holds the window's inputs in `item_id_list` (left-aligned, zero-padded, like RecBole's rows), its length
  in `item_length`, the target of every position in `target_item_id_list` (0 = no loss there), and its **last**
  target in `item_id`, as in a prefix row. Models that pair a row with a same-target partner (BTSRec, DuoRec)
  read `item_id` in both modes: one data pipeline serves both;
- each target is trained once per epoch, where it has the most context: in the earliest-ending window that holds
  it, i.e. a window's loss positions are its last `train_stride` ones (the rest are held, with more context, by
  the next earlier window). Stride = window length gives disjoint windows; stride 1 gives RecBole's prefixes.

`eval_args: {split: {GTS: q}}` selects the rows of BT-SR's global temporal split (split.py) instead of RecBole's
splits; `train_mode` applies to its training rows as to any other.

In `all_positions`, the rows come by default (`row_builder: interactions`) straight from the interaction table
(rows.py): the same windows and validation / test rows as from RecBole's prefix rows, without materialising those
(one [MAX_ITEM_LIST_LENGTH] row per interaction and column); `row_builder: prefix_rows` takes the old path. Before
building any row, `memory.check_loaded` compares the memory the run needs with what the machine has.
"""
import numpy as np
import torch
from recbole.data.dataset import Dataset as RecBoleDataset
from recbole.data.dataset import SequentialDataset as RecBoleSequentialDataset
from recbole.data.interaction import Interaction
from recbole.utils import FeatureSource, FeatureType

from recbole_bt.data.histories import user_histories
from recbole_bt.data.memory import check_loaded
from recbole_bt.data.masking import SEEN_FIELD, add_seen_positions, keep_histories
from recbole_bt.data.rows import (
    histories,
    inputs_before,
    part_sizes,
    row_positions,
    sort_order,
    split_grouped,
    training_histories,
)
from recbole_bt.data.split import (
    SPLIT_MODE,
    check_quantile,
    check_split,
    describe,
    describe_post_cut,
    global_temporal_split,
    is_positions,
    post_cut_keep,
    t_star_of,
)
from recbole_bt.errors import ConfigError

TRAIN_MODES = ("prefix", "all_positions")


def target_list_field(config):
    """Name of the per-position target field of all-positions rows (`target_item_id_list` by default)."""
    return "target_" + config["ITEM_ID_FIELD"] + config["LIST_SUFFIX"]


def windows(offsets, flat, max_len, stride):
    """Cut every history into windows of at most `max_len` (input -> target) pairs, most recent first.

    Returns (user_index [W], inputs [W, L], targets [W, L], lengths [W]); targets are 0 where there is no loss
    (padding, and positions that an earlier-ending window trains with more context).
    """
    n_pairs = np.diff(offsets) - 1  # pairs (h[i] -> h[i + 1]) per user
    n_windows = np.where(n_pairs > 0, -(-n_pairs // stride), 0)  # ceil
    user_index = np.repeat(np.arange(len(n_pairs)), n_windows)
    k = np.arange(len(user_index)) - np.repeat(np.cumsum(n_windows) - n_windows, n_windows)
    end = n_pairs[user_index] - k * stride  # the window holds pairs [start, end)
    start = np.maximum(end - max_len, 0)
    lengths = end - start
    pos = np.arange(max_len)[None, :]
    valid = pos < lengths[:, None]
    index = offsets[user_index][:, None] + start[:, None] + pos
    index = np.where(valid, index, 0)
    inputs = np.where(valid, flat[index], 0)
    targets = np.where(valid & (pos >= (lengths - stride)[:, None]), flat[np.minimum(index + 1, len(flat) - 1)], 0)
    return user_index, inputs, targets, lengths


class SequentialDataset(RecBoleSequentialDataset):
    """RecBole's SequentialDataset with `train_mode` (`prefix` | `all_positions`), `train_stride` and the global
    temporal split (`eval_args: {split: {GTS: q}}`, `gts_exclude_test_users`).

    Attributes:
        split_stats (dict): after a GTS `build`, the split's statistics (see `split.global_temporal_split`), with
            its `quantile` and `exclude_test_users`.
    """

    def build(self):
        check_loaded(self.config, self)  # before any row is built: one line instead of a kill by the kernel
        if self.rows_from_interactions:
            return self.build_from_interactions()
        if self.uses_gts and self.benchmark_filename_list is None:
            datasets = self.split_by_global_time()
        else:
            datasets = super().build()
        if self.config["train_mode"] == "all_positions":
            datasets[0] = self.all_positions_rows(datasets[0])
        return datasets

    @property
    def rows_from_interactions(self):
        """True when the rows are built from the interaction table (rows.py): `train_mode: all_positions` with
        `row_builder: interactions` (the default), under a split rows.py knows (GTS, or leave-one-out / ratio grouped
        by user) and no pre-split benchmark files."""
        if self.config["train_mode"] != "all_positions" or self.config["row_builder"] == "prefix_rows":
            return False
        if self.benchmark_filename_list is not None:
            return False
        eval_args = self.config["eval_args"]
        return self.uses_gts or part_sizes(self, eval_args["split"], str(eval_args["group_by"]).lower()) is not None

    def _change_feat_format(self):
        if not self.rows_from_interactions:
            return super()._change_feat_format()
        RecBoleDataset._change_feat_format(self)  # the table as an Interaction, without RecBole's prefix rows
        self.item_id_list_field = self.iid_field + self.config["LIST_SUFFIX"]
        self.set_field_property(
            self.item_id_list_field, FeatureType.TOKEN_SEQ, FeatureSource.INTERACTION, self.max_item_list_len
        )
        self.set_field_property(self.item_list_length_field, FeatureType.TOKEN, FeatureSource.INTERACTION, 1)

    @property
    def uses_gts(self):
        split = self.config["eval_args"]["split"]
        return isinstance(split, dict) and SPLIT_MODE in split

    def _normalize(self):
        # RecBole may min-max normalise the times (ml-100k does): keep them as loaded, in float64, for the split
        if self.uses_gts and self.time_field in self.inter_feat:
            self._gts_times = self.inter_feat[self.time_field].to_numpy(np.float64, copy=True)
        super()._normalize()

    def _loaded_times(self):
        """The time of every interaction, as loaded (before normalisation), in the current row order."""
        times = getattr(self, "_gts_times", None)
        if times is None or len(times) != len(self.inter_feat):  # e.g. a dataset saved before GTS was asked
            times = np.asarray(self.inter_feat[self.time_field], dtype=np.float64)
        return times

    def data_augmentation(self):
        """RecBole's augmentation; under GTS it also keeps the loaded time of each row's target, and with
        `eval_mask_seen` every user's history and each row's seen part of it (masking.py)."""
        if not self.uses_gts:
            super().data_augmentation()
            if self.config["eval_mask_seen"]:
                add_seen_positions(self)
            return
        uid, time = self.inter_feat[self.uid_field].numpy(), self.inter_feat[self.time_field].numpy()
        times = self._loaded_times()
        order = np.lexsort((time, uid))  # the order RecBole's augmentation sorts by: user, then time, stable
        super().data_augmentation()
        first = np.r_[True, uid[order][1:] != uid[order][:-1]]
        target = order[~first]  # RecBole's rows: one per interaction but each user's first
        if not (
            np.array_equal(self.inter_feat[self.uid_field].numpy(), uid[target])
            and np.array_equal(self.inter_feat[self.time_field].numpy(), time[target])
        ):
            raise RuntimeError("RecBole's data_augmentation no longer sorts by user, then time: GTS cannot map rows")
        self._gts_row_times = (times[target], times)  # each row's target, every interaction
        if self.config["eval_mask_seen"]:
            add_seen_positions(self)

    def _gts_args(self):
        """The GTS quantile, `gts_exclude_test_users` and `gts_test_history`, checked."""
        eval_args = self.config["eval_args"]
        if eval_args["order"] != "TO":
            raise ConfigError("the global temporal split orders interactions by time: set eval_args order: TO")
        if len(eval_args["split"]) != 1:
            raise ConfigError(f"eval_args split {eval_args['split']} names several split modes: keep one")
        quantile = check_quantile(eval_args["split"][SPLIT_MODE])
        exclude = self.config["gts_exclude_test_users"] is not False  # values checked by Config's range table
        history = self.config["gts_test_history"] or "full"
        if history == "post_cut" and not exclude:
            raise ConfigError(
                "gts_test_history post_cut drops the test users' interactions before t*, so they cannot train: "
                "set gts_exclude_test_users: True (BT-SR's reference code), or gts_test_history: full"
            )
        return quantile, exclude, history

    def split_by_global_time(self):
        """RecBole's `build` for `split: {GTS: q}`: the train, valid and test datasets of the global temporal
        split, as `leave_one_out` returns them (split.py)."""
        quantile, exclude, _, all_times = self._gts_prepare()
        self._change_feat_format()  # converts and augments; data_augmentation keeps the times
        target_time = self._gts_row_times[0]
        self._gts_times = self._gts_row_times = None
        *indices, stats = global_temporal_split(
            self.inter_feat[self.uid_field].numpy(), target_time, all_times, quantile, exclude
        )
        self._gts_record(quantile, exclude, stats)
        self._drop_unused_col()
        return [self.copy(self.inter_feat[torch.from_numpy(index)]) for index in indices]

    def _gts_prepare(self):
        """The GTS arguments, checked, and the times of all interactions (t* is a quantile of them all, before any
        post_cut); with `gts_test_history: post_cut` the test users' earlier interactions are dropped here.
        Returns (quantile, exclude, history, all_times)."""
        quantile, exclude, history = self._gts_args()
        if is_positions(self.inter_feat[self.uid_field].to_numpy(), self._loaded_times()):
            raise ConfigError(
                f"global temporal split ({SPLIT_MODE} {quantile}): the {self.time_field} of {self.dataset_name} "
                f"counts each user's interactions (0, 1, 2, ...), it is not a time, so a quantile of it does not "
                f"separate past from future across users: use a dataset with real times (e.g. ml-1m-realtime) "
                f"or the leave-one-out split, eval_args split: {{LS: valid_and_test}}"
            )
        all_times = self._loaded_times()
        if history == "post_cut":
            self._cut_test_histories(t_star_of(all_times, quantile))
        return quantile, exclude, history, all_times

    def _gts_record(self, quantile, exclude, stats):
        """Check the split, log it and keep its statistics (`split_stats`)."""
        check_split(quantile, stats)
        self.logger.info(describe(quantile, stats))
        history = self.config["gts_test_history"] or "full"
        self.split_stats = dict(stats, quantile=quantile, exclude_test_users=exclude, test_history=history)
        self.split_stats.update(getattr(self, "_post_cut_stats", {}))

    def build_from_interactions(self):
        """`build` for `row_builder: interactions` (rows.py): the training windows and the validation and test
        rows, from one sort of the interaction table; RecBole's prefix rows are never built."""
        if self.uses_gts:
            quantile, exclude, _, all_times = self._gts_prepare()
        loaded = self._loaded_times() if self.uses_gts else None
        self._change_feat_format()
        uid, time = self.inter_feat[self.uid_field].numpy(), self.inter_feat[self.time_field].numpy()
        order = sort_order(uid, time)
        self.inter_feat = self.inter_feat[torch.from_numpy(order)]  # by user, then time: each user's history
        uid, time, flat = uid[order], time[order], self.inter_feat[self.iid_field].numpy()
        start = histories(uid, self.user_num)
        position = row_positions(uid)  # RecBole's rows: the position of each target in `flat`
        row_user = uid[position]
        if self.uses_gts:
            *parts, stats = global_temporal_split(row_user, loaded[order][position], all_times, quantile, exclude)
            self._gts_times = None
            self._gts_record(quantile, exclude, stats)
        else:
            eval_args = self.config["eval_args"]
            _, sizes = part_sizes(self, eval_args["split"], str(eval_args["group_by"]).lower())
            parts = split_grouped(row_user, time[position], sizes)
        if self.config["eval_mask_seen"]:
            keep_histories(self, start, flat)
        self._drop_unused_col()
        train = np.sort(parts[0])  # users in id order, each user's rows in time order (as from prefix rows)
        users, offsets, history = training_histories(
            flat, start[row_user[train]], row_user[train], position[train], self.max_item_list_len
        )
        self.logger.info(f"row_builder interactions: {len(flat):,} interactions -> {len(train):,} training rows")
        evaluation = [self.evaluation_rows(flat, start, row_user[rows], position[rows]) for rows in parts[1:]]
        return [self.windows_dataset(self, users, offsets, history, len(train)), *evaluation]

    def evaluation_rows(self, flat, start, users, position):
        """A dataset of validation or test rows, as RecBole's: each target interaction (all its columns), its input
        (the up to MAX_ITEM_LIST_LENGTH items before it) and length, and with `eval_mask_seen` its seen part."""
        inputs, lengths = inputs_before(flat, start[users], position, self.max_item_list_len)
        rows = self.inter_feat[torch.from_numpy(position)]
        rows.update(Interaction({self.item_id_list_field: torch.from_numpy(inputs)}))
        rows[self.item_list_length_field] = torch.from_numpy(lengths)
        if self.config["eval_mask_seen"]:
            rows[SEEN_FIELD] = torch.from_numpy(position)
        return self.copy(rows)

    def _cut_test_histories(self, t_star):
        """`gts_test_history: post_cut`: drop, before RecBole builds its rows, what the reference code does not
        feed a test user (split.post_cut_keep)."""
        feat = self.inter_feat
        keep, stats = post_cut_keep(
            feat[self.uid_field].to_numpy(), feat[self.iid_field].to_numpy(), self._loaded_times(), t_star
        )
        self._gts_times = self._loaded_times()[keep]
        self.inter_feat = feat[keep].reset_index(drop=True)
        self._post_cut_stats = {f"post_cut_{key}": value for key, value in stats.items()}
        self.logger.info(describe_post_cut(stats))

    def all_positions_rows(self, train_dataset):
        """A copy of the training dataset whose rows are user windows with a target at every position
        (`row_builder: prefix_rows`: the histories rebuilt from RecBole's prefix rows)."""
        feat = train_dataset.inter_feat
        users, offsets, flat = user_histories(
            feat[self.uid_field].numpy(),
            feat[self.iid_field].numpy(),
            feat[self.item_id_list_field].numpy(),
            feat[self.item_list_length_field].numpy(),
        )
        return self.windows_dataset(train_dataset, users, offsets, flat, len(feat))

    def windows_dataset(self, template, users, offsets, flat, n_rows):
        """A copy of `template` whose rows are the windows of the training histories (users [U], offsets [U + 1],
        flat [H], as `histories.user_histories` returns them), made of `n_rows` (prefix, target) rows."""
        max_len = self.config["MAX_ITEM_LIST_LENGTH"]
        stride = self.config["train_stride"] or max_len
        user_index, inputs, targets, lengths = windows(offsets, flat, max_len, stride)
        if self.config["train_windows"] == "last":  # each user's most recent window only (the first of each user)
            last = np.r_[True, user_index[1:] != user_index[:-1]] if len(user_index) else np.zeros(0, dtype=bool)
            user_index, inputs, targets, lengths = user_index[last], inputs[last], targets[last], lengths[last]
        target_field = target_list_field(self.config)
        self.set_field_property(target_field, FeatureType.TOKEN_SEQ, FeatureSource.INTERACTION, max_len)
        last_target = targets[np.arange(len(lengths)), lengths - 1]
        rows = Interaction(
            {
                self.uid_field: torch.from_numpy(users[user_index]),
                self.item_id_list_field: torch.from_numpy(inputs),
                self.item_list_length_field: torch.from_numpy(lengths),
                self.iid_field: torch.from_numpy(last_target),
                target_field: torch.from_numpy(targets),
            }
        )
        self.logger.info(
            f"train_mode all_positions: {n_rows} prefix rows -> {len(rows)} windows of up to {max_len} "
            f"positions (stride {stride}{', the last of each user' if self.config['train_windows'] == 'last' else ''}), "
            f"{int((targets > 0).sum())} training targets"
        )
        windows_dataset = template.copy(rows)
        windows_dataset.item_counts = np.bincount(flat, minlength=self.item_num)  # training interactions per item
        return windows_dataset
