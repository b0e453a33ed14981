"""`run_user_tasks`: the downstream user tasks of a (pretrained) sequence encoder, every task x protocol x label
ratio, with the settings of the config (``user_tasks``, ``user_task_protocols``, ``label_ratios``, ...).

For each task the users with a label are split into train / valid / test users (`split.split_users`, stratified
for the attributes, seeded with the config's ``seed``); for each label ratio a stratified fraction of the training
users keeps its label (`split.labelled_subset`); each protocol (`protocols`) trains a head on those users, selects
the epoch on all validation users and reports the test users' metrics: accuracy and macro-F1 for ``gender`` and
``age``, NDCG@10 and HR@10 for ``next_item`` (full ranking over the catalog, the user's history excluded as in
RecBole's evaluation).
"""
from logging import getLogger

import numpy as np
import torch
from recbole.utils import set_color

from recbole_bt.errors import ConfigError
from recbole_bt.evaluator.significance import per_user_metrics
from recbole_bt.tasks.labels import TASKS, user_labels
from recbole_bt.tasks.task_metrics import accuracy, hit_at_k, macro_f1, ndcg_at_k, target_ranks
from recbole_bt.tasks.protocols import class_log_prior, embed, fine_tune, linear_probe
from recbole_bt.tasks.sequences import user_sequences
from recbole_bt.tasks.user_split import check_label_ratio, check_ratios, labelled_subset, split_users

PROTOCOLS = ("probe", "finetune")
NOT_METRICS = ("labelled_users", "epochs", "best_epoch", "best_valid", "per_user")  # a row's other keys
K = 10


def parse_list(value, key):
    """A list option given as a YAML list, a comma-separated string (``--user_tasks=gender,age``) or one number."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]  # --label_ratios=0.1
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"'{key}' must be a list (or a comma-separated string), got {value!r}")
    return list(value)


def _number(text):
    try:
        return float(text) if isinstance(text, str) else text
    except ValueError:
        return text  # refused by check_label_ratio, with the key's name


def task_settings(config):
    """The options of the user tasks, checked: a one-line ConfigError naming the key otherwise."""
    tasks = parse_list(config["user_tasks"], "user_tasks")
    protocols = parse_list(config["user_task_protocols"], "user_task_protocols")
    ratios = [_number(r) for r in parse_list(config["label_ratios"], "label_ratios")]
    for name, values, allowed in (("user_tasks", tasks, TASKS), ("user_task_protocols", protocols, PROTOCOLS)):
        if not values or any(v not in allowed for v in values):
            raise ConfigError(f"Make sure each of '{name}' in {list(allowed)}! (got {values!r})")
    for r in ratios:
        check_label_ratio(r)
    if 0 in ratios and set(tasks) - {"next_item"}:
        raise ConfigError("label ratio 0 (no labelled user: the model's own item scores) is for 'next_item' only; "
                          f"drop it from 'label_ratios' or set user_tasks: next_item (got {tasks!r})")
    check_ratios(config["user_split"])
    settings = {}
    for key in ("probe_epochs", "task_epochs", "task_batch_size", "user_task_stopping_step"):
        v = config[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"'{key}' must be an integer >= 1, got {v!r}")
        settings[key] = v
    settings["user_task_keep_start"] = config["user_task_keep_start"]  # True or False (config_ranges)
    settings["user_task_head_start"] = config["user_task_head_start"] or "random"  # random or prior (config_ranges)
    for key in ("probe_learning_rate", "probe_weight_decay", "learning_rate", "weight_decay"):
        v = config[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v >= 0 and np.isfinite(v)):
            raise ConfigError(f"'{key}' must be a finite number >= 0, got {v!r}")
        settings[key] = v
    return tasks, protocols, ratios, settings


def _protocol_settings(protocol, settings, seed):
    probe = protocol == "probe"
    return {
        "epochs": settings["probe_epochs" if probe else "task_epochs"],
        "learning_rate": settings["probe_learning_rate" if probe else "learning_rate"],
        "weight_decay": settings["probe_weight_decay" if probe else "weight_decay"],
        "batch_size": settings["task_batch_size"],
        "stopping_step": settings["user_task_stopping_step"],
        "keep_start": settings["user_task_keep_start"],
        "seed": seed,
    }


class _NextItem:
    """Full-ranking scores with the padding id and each user's history (its target excepted) excluded."""

    def __init__(self, sequences):
        self.seq, self.targets = sequences.item_seq, torch.as_tensor(sequences.next_item)

    def masked(self, logits, users):
        logits = logits.clone()
        logits[:, 0] = -torch.inf
        seq = self.seq[users]
        history = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, seq, True)
        history[torch.arange(len(users)), self.targets[users]] = False
        return logits.masked_fill(history, -torch.inf)

    def ranks(self, logits, users):
        return target_ranks(self.masked(logits, users).numpy(), self.targets[users].numpy())

    def score(self, logits, users):
        return ndcg_at_k(self.ranks(logits, users), K)

    def metrics(self, logits, users):
        ranks = self.ranks(logits, users)
        return {f"ndcg@{K}": ndcg_at_k(ranks, K), f"hit@{K}": hit_at_k(ranks, K)}

    def per_user(self, logits, users):
        """Each user's NDCG@K and HR@K, from the target's 1-based rank."""
        return {k: v.round(6).tolist() for k, v in per_user_metrics(self.ranks(logits, users), ks=(K,)).items()}


class _Attribute:
    def __init__(self, labels):
        self.labels = labels

    def score(self, logits, users):
        return accuracy(self.labels[users.numpy()], logits.argmax(1).numpy())

    def metrics(self, logits, users):
        y, pred = self.labels[users.numpy()], logits.argmax(1).numpy()
        return {"accuracy": accuracy(y, pred), "macro_f1": macro_f1(y, pred)}

    def per_user(self, logits, users):
        """Each user's accuracy: 1.0 when the predicted class is theirs (macro-F1 has no per-user form)."""
        return {"accuracy": (self.labels[users.numpy()] == logits.argmax(1).numpy()).astype(float).tolist()}


def run_user_tasks(config, model, valid_data):
    """Every configured task x protocol x label ratio on `model`'s encoder.

    Returns:
        dict: ``{task: {protocol: {label_ratio: {metric: value, ..., "labelled_users", "epochs", "best_epoch",
        "per_user"}}}}``
        (``per_user``: the test users' ids and each one's accuracy, or NDCG@10 and HR@10, for paired tests), plus
        ``"users"``: ``{task: {"train", "valid", "test"}}`` counts (and, for the attributes, the test accuracy of
        always answering the training users' most frequent class, ``"majority_accuracy"``).
    """
    logger = getLogger()
    tasks, protocols, ratios, settings = task_settings(config)
    seed = config["seed"]
    sequences = user_sequences(valid_data, model)
    dataset = valid_data._dataset
    features = embed(model, sequences.item_seq, sequences.item_seq_len, config["eval_batch_size"]) if "probe" in protocols else None
    results = {"users": {}}
    for task in tasks:
        if task == "next_item":
            labels, n_classes, strata = sequences.next_item, model.n_items, None
            judge, init = _NextItem(sequences), model.item_embedding.weight[: model.n_items].detach().clone()
        else:
            by_user, classes = user_labels(dataset, task)
            labels, n_classes = by_user[sequences.users], len(classes)
            strata, judge, init = labels, _Attribute(labels), None
        known = np.flatnonzero(labels >= 0)
        train, valid, test = (known[p] for p in split_users(len(known), config["user_split"], seed,
                                                             None if strata is None else strata[known]))  # fmt: skip
        results["users"][task] = {"train": len(train), "valid": len(valid), "test": len(test)}
        if strata is not None:  # the accuracy of always answering the training users' most frequent class
            majority = np.bincount(labels[train]).argmax()
            results["users"][task]["majority_accuracy"] = float(np.mean(labels[test] == majority))
        logger.info(set_color("user task", "blue") + f" {task}: {len(train)} train / {len(valid)} valid / "
                    f"{len(test)} test users, {n_classes} classes")  # fmt: skip
        if min(len(train), len(valid), len(test)) == 0:
            raise ConfigError(f"user task '{task}': too few users with a label ({len(known)}) for user_split {config['user_split']}")
        y = np.where(labels >= 0, labels, 0)
        valid_t, test_t = torch.as_tensor(valid), torch.as_tensor(test)
        results[task] = {p: {} for p in protocols}
        for ratio in ratios:
            labelled = torch.as_tensor(labelled_subset(train, ratio, seed, strata))
            bias = None
            if strata is not None and settings["user_task_head_start"] == "prior":  # the majority-class rule
                init, bias = torch.zeros(n_classes, model.hidden_size), class_log_prior(y[labelled], n_classes)
            for protocol in protocols:
                s = _protocol_settings(protocol, settings, seed)
                if protocol == "probe":
                    logits, info = linear_probe(features, y, n_classes, labelled, valid_t, test_t, s, judge.score, init,
                                                bias, standardise=strata is not None)  # fmt: skip
                else:
                    logits, info = fine_tune(model, sequences, y, n_classes, labelled, valid_t, test_t, s, judge.score,
                                             init, bias)  # fmt: skip
                row = dict(judge.metrics(logits, test_t), labelled_users=len(labelled), **info)
                logger.info(f"  {task} {protocol} label_ratio={ratio}: " + ", ".join(
                    f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))  # fmt: skip
                row["per_user"] = {"user": sequences.users[test].tolist(), **judge.per_user(logits, test_t)}
                results[task][protocol][ratio] = row
    logger.info(set_color("user tasks", "yellow") + "\n" + tasks_table(results))
    return results


def tasks_table(results):
    """Markdown table: one row per task x protocol x label ratio, the test metrics."""
    lines = ["| task | protocol | label ratio | labelled users | metrics (test users) |", "|---|---|---|---|---|"]
    for task, by_protocol in results.items():
        if task == "users":
            continue
        for protocol, by_ratio in by_protocol.items():
            for ratio, row in by_ratio.items():
                metrics = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in NOT_METRICS)
                lines.append(f"| {task} | {protocol} | {ratio:g} | {row['labelled_users']} | {metrics} |")
    return "\n".join(lines)
