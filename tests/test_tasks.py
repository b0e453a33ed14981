"""The downstream user tasks (recbole_bt/tasks): labels from the .user file, the user and label-ratio splits,
the metrics by hand, the two protocols on toy features, and `train_stage: user_tasks` end to end."""
import numpy as np
import pytest
import torch

from conftest import TINY_YAML, tiny_config
from recbole_bt import ConfigError
from recbole_bt.quick_start import prepare, run_recbole_bt
from recbole_bt.tasks import age_bracket, labelled_subset, split_users, user_labels
from recbole_bt.tasks.task_metrics import accuracy, hit_at_k, macro_f1, ndcg_at_k, target_ranks
from recbole_bt.tasks.protocols import class_log_prior, fine_tune, linear_probe, make_head
from recbole_bt.tasks.runner import _NextItem
from recbole_bt.tasks.sequences import UserSequences, user_sequences

SMALL = {"hidden_size": 8, "n_heads": 2, "inner_size": 16}
FAST = {"probe_epochs": 3, "task_epochs": 1, "user_split": [0.5, 0.25, 0.25]}


# --------------------------------------------------------------------------------------------- labels
def test_age_brackets_of_raw_ages_and_of_ml1m_codes():
    raw = [5, 17, 18, 24, 25, 34, 35, 44, 45, 49, 50, 55, 56, 73]
    assert age_bracket(raw).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]
    assert age_bracket([1, 18, 25, 35, 45, 50, 56]).tolist() == list(range(7))  # ML-1M's codes are the brackets


def test_user_labels_from_the_user_file(workdir):
    config, train_data, *_ = prepare("BTPretrain", "tiny", [TINY_YAML], tiny_config(**SMALL))
    dataset = train_data._dataset
    gender, classes = user_labels(dataset, "gender")
    assert classes == ["F", "M"] and gender[0] == -1  # id 0 is RecBole's padding user
    tokens = dataset.id2token(dataset.uid_field, np.arange(1, dataset.user_num))
    age, brackets = user_labels(dataset, "age")
    assert brackets == ["1", "18", "25", "35", "45", "50", "56"]
    with open(TINY_YAML.replace("tiny.yaml", "tiny/tiny.user")) as f:
        rows = {r.split("\t")[0]: r.split("\t") for r in f.read().splitlines()[1:]}
    for uid, token in zip(range(1, dataset.user_num), tokens):
        assert classes[gender[uid]] == rows[token][2]
        assert age[uid] == age_bracket([float(rows[token][1])])[0]


def test_a_dataset_without_user_file_is_one_line_error(workdir):
    config, train_data, *_ = prepare("BTPretrain", "tiny", [TINY_YAML], tiny_config(
        **SMALL, load_col={"inter": ["user_id", "item_id", "rating", "timestamp"]}))  # fmt: skip
    with pytest.raises(ConfigError, match="tiny.user") as e:
        user_labels(train_data._dataset, "gender")
    assert "\n" not in str(e.value)


# --------------------------------------------------------------------------------------------- splits
LABELS = np.array([0] * 50 + [1] * 30 + [2] * 20)


def test_user_split_is_stratified_disjoint_and_seeded():
    train, valid, test = split_users(100, [0.8, 0.1, 0.1], seed=3, labels=LABELS)
    assert sorted(np.concatenate([train, valid, test]).tolist()) == list(range(100))
    assert [np.bincount(LABELS[p], minlength=3).tolist() for p in (train, valid, test)] == [[40, 24, 16], [5, 3, 2], [5, 3, 2]]
    again = split_users(100, [0.8, 0.1, 0.1], seed=3, labels=LABELS)
    assert all(np.array_equal(a, b) for a, b in zip((train, valid, test), again))
    other = split_users(100, [0.8, 0.1, 0.1], seed=4, labels=LABELS)
    assert not np.array_equal(test, other[2])


def test_label_ratio_subset_is_stratified_seeded_nested_and_disjoint_from_test():
    train, valid, test = split_users(100, [0.8, 0.1, 0.1], seed=0, labels=LABELS)
    subsets = {r: labelled_subset(train, r, seed=0, labels=LABELS) for r in (0.01, 0.1, 1.0)}
    # per class max(1, round(ratio * n)) of the 40 / 24 / 16 training users
    assert np.bincount(LABELS[subsets[0.01]], minlength=3).tolist() == [1, 1, 1]
    assert np.bincount(LABELS[subsets[0.1]], minlength=3).tolist() == [4, 2, 2]
    assert np.array_equal(subsets[1.0], train)
    assert set(subsets[0.01]) <= set(subsets[0.1]) <= set(subsets[1.0])
    assert not set(subsets[0.1]) & (set(test) | set(valid))
    assert np.array_equal(subsets[0.1], labelled_subset(train, 0.1, seed=0, labels=LABELS))
    assert not np.array_equal(subsets[0.1], labelled_subset(train, 0.1, seed=1, labels=LABELS))
    assert len(labelled_subset(train, 0.1, seed=0)) == 8  # unstratified: round(0.1 * 80)


@pytest.mark.parametrize("bad", [1.5, -0.1, "x", True])
def test_bad_label_ratio_is_refused(bad):
    with pytest.raises(ConfigError, match="label_ratios"):
        labelled_subset(np.arange(10), bad, seed=0)


def test_label_ratio_zero_keeps_no_label():
    assert labelled_subset(np.arange(10), 0, seed=0, labels=np.arange(10) % 2).tolist() == []


@pytest.mark.parametrize("bad", [[0.8, 0.2], [0.8, 0.1, 0.2], [1.0, 0, 0], "0.8"])
def test_bad_user_split_is_refused(bad):
    with pytest.raises(ConfigError, match="user_split"):
        split_users(10, bad, seed=0)


# --------------------------------------------------------------------------------------------- metrics
def test_accuracy_and_macro_f1_by_hand():
    y_true, y_pred = [0, 0, 1, 1, 2], [0, 1, 1, 1, 0]
    # class 0: tp 1 fp 1 fn 1 -> 2/4; class 1: tp 2 fp 1 fn 0 -> 4/5; class 2: tp 0 fp 0 fn 1 -> 0
    assert accuracy(y_true, y_pred) == pytest.approx(3 / 5)
    assert macro_f1(y_true, y_pred) == pytest.approx((0.5 + 0.8 + 0) / 3)


def test_ranks_ndcg_and_hit_by_hand():
    scores = np.array([[0.1, 0.5, 0.3], [0.9, 0.2, 0.2]])
    ranks = target_ranks(scores, np.array([2, 1]))  # a tie is not ranked above the target
    assert ranks.tolist() == [2, 2]
    assert hit_at_k(ranks, 1) == 0 and hit_at_k(ranks, 2) == 1
    assert ndcg_at_k(ranks, 2) == pytest.approx(1 / np.log2(3)) and ndcg_at_k(ranks, 1) == 0
    with pytest.raises(ValueError, match="non-finite"):
        target_ranks(np.array([[np.nan, 1.0]]), np.array([0]))


def test_next_item_ranking_excludes_padding_and_history_but_not_the_target():
    seq = UserSequences(users=np.array([1, 2]), item_seq=torch.tensor([[3, 1, 0], [2, 0, 0]]),
                        item_seq_len=torch.tensor([2, 1]), next_item=np.array([2, 2]))  # fmt: skip
    logits = torch.tensor([[9.0, 8, 1, 7], [9, 8, 1, 0]])  # items 0..3; 0 is padding
    ranks = _NextItem(seq).ranks(logits, torch.tensor([0, 1]))
    # user 1: items 1 and 3 in its history -> target 2 first; user 2: its target 2 is in its history, kept: item 1 above
    assert ranks.tolist() == [1, 2]


# --------------------------------------------------------------------------------------------- protocols
SETTINGS = {"epochs": 50, "learning_rate": 0.05, "weight_decay": 0.0, "batch_size": 16, "stopping_step": 50, "seed": 0}


def test_linear_probe_learns_a_linearly_separable_label():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(120, 4, generator=g) * torch.tensor([1.0, 5, 5, 5])
    features[:, 0] += features[:, 0].sign()  # a margin of 2 between the classes along the first dimension
    labels = (features[:, 0] > 0).long().numpy()
    train, valid, test = torch.arange(80), torch.arange(80, 100), torch.arange(100, 120)
    score = lambda logits, users: accuracy(labels[users.numpy()], logits.argmax(1).numpy())  # noqa: E731
    logits, info = linear_probe(features, labels, 2, train, valid, test, SETTINGS, score)
    assert logits.shape == (20, 2) and accuracy(labels[100:], logits.argmax(1).numpy()) >= 0.95
    assert info["best_valid"] >= 0.95


def test_fine_tuning_trains_the_encoder_and_gives_it_back_unchanged(workdir):
    config, train_data, valid_data, _, trainer = prepare(
        "BTPretrain", "tiny", [TINY_YAML], tiny_config(**SMALL, train_stage="user_tasks"))  # fmt: skip
    model = trainer.model
    sequences = user_sequences(valid_data, model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    labels = np.arange(len(sequences)) % 2
    users = torch.arange(len(sequences))
    seen = []
    score = lambda logits, u: seen.append(model.item_embedding.weight.sum().item()) or 0.0  # noqa: E731
    fine_tune(model, sequences, labels, 2, users[:20], users[20:30], users[30:], dict(SETTINGS, epochs=2), score)
    assert seen[0] == pytest.approx(before["item_embedding.weight"].sum().item())  # the start, scored first
    assert seen[1] != pytest.approx(before["item_embedding.weight"].sum().item())  # the encoder trained
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_without_labelled_users_the_head_scores_as_it_starts(workdir):
    """Label ratio 0: nothing trains; the probe's logits are the features times the start weights, by hand, and
    fine-tuning's the encoder's own user vectors times them (the next_item task's zero-shot score)."""
    features = torch.tensor([[1.0, 0], [0, 2], [1, 1]])
    weight = torch.tensor([[0.0, 0], [1, 0], [0, 1], [2, -1]])  # 4 classes
    none, valid, test = torch.arange(0), torch.tensor([0]), torch.tensor([1, 2])
    score = lambda logits, users: float(logits[0, 3])  # noqa: E731
    logits, info = linear_probe(features, np.zeros(3, dtype=int), 4, none, valid, test, SETTINGS, score, weight)
    assert logits.tolist() == [[0, 0, 2, -2], [0, 1, 1, 1]] and info == {"best_valid": 2.0, "epochs": 0, "best_epoch": 0}
    config, train_data, valid_data, _, trainer = prepare(
        "BTPretrain", "tiny", [TINY_YAML], tiny_config(**SMALL, train_stage="user_tasks"))  # fmt: skip
    model, sequences = trainer.model, user_sequences(valid_data, trainer.model)
    table = model.item_embedding.weight[: model.n_items].detach().clone()
    users = torch.arange(len(sequences))
    logits, info = fine_tune(model, sequences, np.zeros(len(users), dtype=int), model.n_items, none, users[:5],
                             users[5:], SETTINGS, lambda logits, u: 0.0, table)  # fmt: skip
    model.eval()
    with torch.no_grad():
        own = model.forward(sequences.item_seq[5:], sequences.item_seq_len[5:]) @ table.T  # [T N]
    assert info["epochs"] == 0 and torch.allclose(logits, own, atol=1e-5)


def test_the_start_is_kept_when_training_only_makes_validation_worse():
    """Training users labelled against the start head's (right) answers on validation: with keep_start the
    selection keeps the start (epoch 0) and its logits; without it, a trained epoch and worse validation."""
    features = torch.tensor([[1.0], [-1.0]]).repeat(10, 1)  # users 0..19, x = +1 / -1 alternately
    sign = (features[:, 0] > 0).long().numpy()
    labels = np.where(np.arange(20) < 10, 1 - sign, sign)  # users 0..9 (train) reversed, 10..19 right
    start = torch.tensor([[-0.1], [0.1]])  # class 1 for x = +1: right on the validation users, by a small margin
    train, valid, test = torch.arange(10), torch.arange(10, 16), torch.arange(16, 20)
    score = lambda logits, users: accuracy(labels[users.numpy()], logits.argmax(1).numpy())  # noqa: E731
    settings = dict(SETTINGS, epochs=20, learning_rate=0.5, batch_size=10, stopping_step=20)
    kept, info = linear_probe(features, labels, 2, train, valid, test, dict(settings, keep_start=True), score, start)
    assert torch.equal(kept, features[16:] @ start.T) and info == {"best_valid": 1.0, "epochs": 20, "best_epoch": 0}
    trained, info = linear_probe(features, labels, 2, train, valid, test, dict(settings, keep_start=False), score, start)
    assert info["best_epoch"] >= 1 and info["best_valid"] < 1.0 and not torch.equal(trained, kept)


def test_class_log_prior_by_hand():
    """Labels 0, 0, 0, 1 of 3 classes: add-one counts 4, 2, 1 of 7; the head with zero weights answers class 0."""
    prior = class_log_prior(np.array([0, 0, 0, 1]), 3)
    assert prior.tolist() == pytest.approx(np.log([4 / 7, 2 / 7, 1 / 7]).tolist())
    head = make_head(5, 3, torch.zeros(3, 5), prior)
    assert head(torch.randn(4, 5)).argmax(1).tolist() == [0, 0, 0, 0]


def test_a_prior_start_keeps_the_majority_class_when_training_only_makes_validation_worse():
    """Features that say nothing, training users whose labels go against the validation users' majority class:
    from the prior start (zero weights, the labelled users' log frequencies) with keep_start, the selection keeps
    the majority-class rule (epoch 0: class 0 for every test user); from random weights it never scores it."""
    features = torch.randn(60, 3, generator=torch.Generator().manual_seed(1))
    labels = np.r_[np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1]), np.zeros(40, dtype=int), np.ones(10, dtype=int)]
    train, valid, test = torch.arange(10), torch.arange(10, 50), torch.arange(50, 60)
    score = lambda logits, users: accuracy(labels[users.numpy()], logits.argmax(1).numpy())  # noqa: E731
    settings = dict(SETTINGS, epochs=20, learning_rate=0.5, batch_size=10, stopping_step=20, keep_start=True)
    prior = class_log_prior(np.r_[np.zeros(8, dtype=int), np.ones(2, dtype=int)], 2)  # a labelled majority of 0s
    kept, info = linear_probe(features, labels, 2, train, valid, test, settings, score, torch.zeros(2, 3), prior,
                              standardise=True)  # fmt: skip
    assert info["best_epoch"] == 0 and info["best_valid"] == 1.0 and kept.argmax(1).tolist() == [0] * 10
    assert torch.allclose(kept, prior.expand(10, 2))  # zero weights: the bias alone, whatever the features
    _, info = linear_probe(features, labels, 2, train, valid, test, settings, score)
    assert info["best_valid"] < 1.0


def test_prior_start_end_to_end_scores_the_majority_class_when_nothing_trains(workdir):
    """user_task_head_start: prior with learning rates 0: no step moves the head or the encoder, every epoch ties
    with the start and the selection keeps it, so at label ratio 1.0 both protocols' test accuracy is the
    training users' majority class's (`majority_accuracy`), and macro-F1 that of one class."""
    result = run_recbole_bt("BTPretrain", "tiny", [TINY_YAML], tiny_config(
        **SMALL, **FAST, train_stage="user_tasks", user_tasks="gender", label_ratios=[1.0],
        user_task_head_start="prior", probe_learning_rate=0.0, learning_rate=0.0))  # fmt: skip
    rows, majority = result["user_tasks"]["gender"], result["user_tasks"]["users"]["gender"]["majority_accuracy"]
    for row in (rows["probe"][1.0], rows["finetune"][1.0]):
        assert row["best_epoch"] == 0 and row["accuracy"] == pytest.approx(majority)
        assert row["macro_f1"] == pytest.approx(majority / (1 + majority))  # (F1 2p / (1 + p) of the one class + 0) / 2


def test_label_ratio_zero_end_to_end_and_for_attributes_refused(workdir):
    result = run_recbole_bt("DualEncoder", "tiny", [TINY_YAML], tiny_config(
        **SMALL, **FAST, train_stage="user_tasks", user_tasks="next_item", label_ratios=[0, 1.0]))  # fmt: skip
    rows = result["user_tasks"]["next_item"]
    assert rows["probe"][0]["labelled_users"] == rows["finetune"][0]["labelled_users"] == 0
    assert rows["probe"][0]["epochs"] == rows["finetune"][0]["epochs"] == 0
    assert rows["probe"][0]["ndcg@10"] == pytest.approx(rows["finetune"][0]["ndcg@10"], abs=1e-6)  # the same scores
    assert rows["probe"][1.0]["epochs"] >= 1
    with pytest.raises(ConfigError, match="label ratio 0 .* is for 'next_item' only") as e:
        run_recbole_bt("DualEncoder", "tiny", [TINY_YAML], tiny_config(
            **SMALL, **FAST, train_stage="user_tasks", user_tasks="gender,next_item", label_ratios=[0]))  # fmt: skip
    assert "\n" not in str(e.value)


# --------------------------------------------------------------------------------------------- end to end
def test_user_tasks_stage_end_to_end_random_encoder(workdir):
    result = run_recbole_bt("BTPretrain", "tiny", [TINY_YAML], tiny_config(**SMALL, **FAST, train_stage="user_tasks"))
    tasks = result["user_tasks"]
    assert result["test_result"] is None
    for task, metrics in (("gender", {"accuracy", "macro_f1"}), ("age", {"accuracy", "macro_f1"}),
                          ("next_item", {"ndcg@10", "hit@10"})):  # fmt: skip
        for protocol in ("probe", "finetune"):
            assert set(tasks[task][protocol]) == {0.01, 0.1, 1.0}
            row = tasks[task][protocol][1.0]
            assert metrics <= set(row) and all(0 <= row[m] <= 1 for m in metrics)
            assert tasks[task][protocol][0.01]["labelled_users"] <= row["labelled_users"] == tasks["users"][task]["train"]
            per_user = row["per_user"]  # each test user's outcome: they average to the reported metric
            assert len(per_user["user"]) == len(set(per_user["user"])) == tasks["users"][task]["test"]
            main = "accuracy" if task != "next_item" else "ndcg@10"
            assert sum(per_user[main]) / len(per_user[main]) == pytest.approx(row[main], abs=1e-5)
    users = tasks["users"]["gender"]
    assert users["train"] + users["valid"] + users["test"] == 40
    assert 0 < users["majority_accuracy"] < 1 and "majority_accuracy" not in tasks["users"]["next_item"]


@pytest.mark.parametrize("model", ["BTPretrain", "DualEncoder", "CLUE"])
def test_pretrain_then_user_tasks(workdir, model):
    pre = run_recbole_bt(model, "tiny", [TINY_YAML], tiny_config(**SMALL, pretrain_epochs=1))
    path = pre["pretrain"]["pretrained_model_file"]
    result = run_recbole_bt(model, "tiny", [TINY_YAML], tiny_config(
        **SMALL, **FAST, train_stage="user_tasks", pre_model_path=path, user_tasks="gender,next_item",
        user_task_protocols=["probe"], label_ratios=[1.0]))  # fmt: skip
    assert set(result["user_tasks"]) == {"users", "gender", "next_item"}
    assert set(result["user_tasks"]["gender"]) == {"probe"}


@pytest.mark.parametrize("key,value", [("user_tasks", ["gender", "shoe_size"]), ("user_task_protocols", "probe,knn"),
                                       ("label_ratios", [0.1, 2]), ("probe_epochs", 0), ("task_batch_size", 1.5),
                                       ("probe_learning_rate", -1)])  # fmt: skip
def test_bad_task_options_are_one_line_errors(workdir, key, value):
    with pytest.raises(ConfigError, match=key) as e:
        run_recbole_bt("BTPretrain", "tiny", [TINY_YAML], tiny_config(**SMALL, train_stage="user_tasks", **{key: value}))
    assert "\n" not in str(e.value)


def test_list_options_from_the_command_line():
    from recbole_bt.tasks.runner import task_settings

    config = {"user_tasks": "gender,next_item", "user_task_protocols": "probe", "label_ratios": 0.1,
              "user_split": [0.8, 0.1, 0.1], "probe_epochs": 1, "task_epochs": 1, "task_batch_size": 8,
              "user_task_stopping_step": 1, "user_task_keep_start": True, "user_task_head_start": "random",
              "probe_learning_rate": 0.1, "probe_weight_decay": 0, "learning_rate": 0.1,
              "weight_decay": 0.0}  # fmt: skip
    tasks, protocols, ratios, _ = task_settings(config)
    assert (tasks, protocols, ratios) == (["gender", "next_item"], ["probe"], [0.1])
    assert task_settings(dict(config, label_ratios=(0.01, 1.0)))[2] == [0.01, 1.0]  # RecBole evals "0.01,1.0"
    with pytest.raises(ConfigError, match="label_ratios"):
        task_settings(dict(config, label_ratios="lots"))


def test_user_tasks_stage_of_a_model_without_it_is_refused(workdir):
    with pytest.raises(ConfigError, match="SASRec has no such stage"):
        run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(**SMALL, train_stage="user_tasks"))
