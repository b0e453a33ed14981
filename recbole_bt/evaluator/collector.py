"""RecBole's Collector, plus the evaluation data of recbole_bt's metrics.

- `data.item_bucket` [n_items]: popularity bucket of every item, from the training interactions (`data_collect`,
  once per `fit`, which logs the bucket sizes);
- `rec.positive_rank` / `rec.positive_item` [P]: for every evaluated (user, target) pair, the target's position
  in the user's ranking (>= max(topk) when it is not in the top-K) and the target's id (`eval_batch_collect`);
- `model.sequence_embedding` [n_users, D]: the evaluated users' sequence embeddings, pushed by the trainer's
  evaluation step (`embedding_collect`), only when a metric asks for them;
- with `keep_per_user = True`, the last evaluation's rows (`per_user`: `user` [U] ids and RecBole's `topk` [U K+1]
  hit matrix), from which `significance.per_user_from_topk` gives each user's NDCG@K and HR@K for paired tests.

It also refuses non-finite scores (`check_scores`, called by the trainer's evaluation step on every batch): a NaN
score compares false against everything, so a rank computed by comparison puts it first and inflates NDCG/HR
silently. NaN or +inf anywhere in an evaluated user's row, or -inf on a target item that RecBole did not mask as
already seen, make `get_data_struct` raise `NonFiniteScoreError` at the end of the evaluation, before any metric.
"""
import math
from logging import getLogger

import numpy as np
import torch
from recbole.evaluator.collector import Collector as RecBoleCollector

from recbole_bt.compat import HostInt
from recbole_bt.data.dataset import target_list_field
from recbole_bt.data.histories import user_histories
from recbole_bt.errors import NonFiniteScoreError
from recbole_bt.evaluator.metrics import BUCKETS, popularity_buckets

PER_EVALUATION = ("rec.positive_rank", "rec.positive_item", "model.sequence_embedding")


def training_item_counts(dataset):
    """[n_items] training interactions per item id of a training dataset.

    A sequential dataset's rows are (history, target) pairs: each user's training history is rebuilt from them
    (`user_histories`), so the first item of every history counts too. recbole_bt's SequentialDataset records
    the counts before it turns rows into all-positions windows (`item_counts`)."""
    counts = getattr(dataset, "item_counts", None)
    if counts is not None:
        return counts
    feat, n_items = dataset.inter_feat, dataset.item_num
    list_field = getattr(dataset, "item_id_list_field", None)
    if list_field in feat and target_list_field(dataset.config) not in feat:
        _, _, flat = user_histories(
            feat[dataset.uid_field].numpy(),
            feat[dataset.iid_field].numpy(),
            feat[list_field].numpy(),
            feat[dataset.item_list_length_field].numpy(),
        )
        return np.bincount(flat, minlength=n_items)
    return np.bincount(feat[dataset.iid_field].numpy(), minlength=n_items)


def describe_buckets(counts, buckets):
    """One line: items and share of the training interactions in each popularity bucket."""
    counts, total = np.asarray(counts)[1:], max(int(np.sum(counts[1:])), 1)
    buckets = np.asarray(buckets)[1:]
    parts = []
    for b, name in enumerate(BUCKETS):
        members = buckets == b
        part = f"{name} {int(members.sum()):,} items ({counts[members].sum() / total:.1%})"
        if b == len(BUCKETS) - 1 and (counts == 0).any():
            part += f", {int((counts == 0).sum()):,} of them never in training"
        parts.append(part)
    return f"popularity buckets of {total:,} training interactions: " + "; ".join(parts)


class Collector(RecBoleCollector):
    """RecBole's Collector with the data of coverage, effective_rank and hit_head/mid/tail."""

    def __init__(self, config):
        super().__init__(config)
        self._non_finite, self._scored = 0, 0  # evaluated users (rows) with non-finite scores, and all of them
        self._unit = "users"
        self.keep_per_user, self.per_user, self._users = False, None, []

    @property
    def needs_embeddings(self):
        return bool(self.register.need("model.sequence_embedding"))

    def data_collect(self, train_data):
        super().data_collect(train_data)
        if self.register.need("data.item_bucket"):
            counts = training_item_counts(train_data.dataset)
            buckets = popularity_buckets(counts)
            self.data_struct.set("data.item_bucket", torch.from_numpy(buckets))
            getLogger().info(describe_buckets(counts, buckets))

    def catalog_collect(self, dataset):
        """`data.num_items` (coverage's denominator) from an evaluated dataset, when `data_collect` has not run:
        evaluation without `fit`, e.g. of a reloaded checkpoint."""
        if self.register.need("data.num_items") and "data.num_items" not in self.data_struct:
            self.data_struct.set("data.num_items", HostInt(dataset.item_num))

    def eval_batch_collect(self, scores_tensor, interaction, positive_u, positive_i):
        super().eval_batch_collect(scores_tensor, interaction, positive_u, positive_i)
        if self.keep_per_user and scores_tensor.dim() == 2:
            self._users.append(interaction[self.config["USER_ID_FIELD"]].detach().cpu())
        if self.register.need("rec.positive_rank"):
            _, topk_idx = torch.topk(scores_tensor, max(self.topk), dim=-1)  # [B K]
            found = topk_idx[positive_u] == positive_i.unsqueeze(1)  # [P K]
            rank = torch.where(found.any(dim=1), found.int().argmax(dim=1), max(self.topk))  # [P]
            self.data_struct.update_tensor("rec.positive_rank", rank)
            self.data_struct.update_tensor("rec.positive_item", positive_i)

    def check_scores(self, scores, positive_u, positive_i, history_index=None):
        """Count the rows of a batch's scores [B N] (users; [B] interactions with `eval_type: value`) holding NaN or
        +inf, or -inf on a target item (positive_u, positive_i [P]) outside RecBole's history mask `history_index`
        (full sort: (users, items) set to -inf as already seen). `get_data_struct` raises if any."""
        self._unit = "rows" if scores.dim() == 1 else "users"
        if scores.dim() == 1:
            bad = ~torch.isfinite(scores)  # [B]
        else:
            bad = ~(scores < math.inf).all(dim=1)  # [B]: one pass; NaN and +inf compare false, -inf true
            users, items = positive_u.to(scores.device), positive_i.to(scores.device)
            on_target = torch.isneginf(scores[users, items])  # [P]
            if history_index is not None and on_target.any():
                seen_u, seen_i = (index.to(scores.device) for index in history_index)
                n = scores.shape[1]
                on_target &= ~torch.isin(users * n + items, seen_u * n + seen_i)
            bad[users[on_target]] = True
        self._non_finite = self._non_finite + bad.sum()
        self._scored += len(bad)

    def _raise_on_non_finite(self):
        non_finite, scored = int(self._non_finite), self._scored
        self._non_finite, self._scored = 0, 0
        if non_finite:
            raise NonFiniteScoreError(
                f"{self.config['model']} gave non-finite scores (NaN or +inf, or -inf on the target item) to "
                f"{non_finite:,} of {scored:,} evaluated {self._unit}: "
                "evaluation stopped, a ranking of such scores is meaningless"
            )

    def embedding_collect(self, embeddings):
        """Add a batch of evaluated users' sequence embeddings [B D]."""
        self.data_struct.update_tensor("model.sequence_embedding", embeddings.float())

    def get_data_struct(self):
        returned = super().get_data_struct()
        for key in PER_EVALUATION:  # RecBole resets only its own per-evaluation keys
            if key in self.data_struct:
                del self.data_struct[key]
        self._raise_on_non_finite()
        if self.keep_per_user and self._users and "rec.topk" in returned:
            self.per_user = {"user": torch.cat(self._users), "topk": returned.get("rec.topk").clone()}
        self._users = []
        return returned
