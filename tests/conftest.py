"""Shared fixtures: a tiny hand-made dataset (tests/fixtures/tiny) and a clean working directory per test."""
import os
import sys

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS_DIR)
FIXTURES = os.path.join(TESTS_DIR, "fixtures")
TINY_YAML = os.path.join(FIXTURES, "tiny.yaml")
RUN_SCRIPT = os.path.join(ROOT, "run_recbole_bt.py")


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (the README runs ``-n 2 --dist loadgroup``) the tests that start several processes at
    once (marker ``spawns(several=True)``: torch.distributed groups, benchmarks' parallel workers) share one worker:
    two of them at once would oversubscribe the cores (and race for free ports); a test that starts one process at
    a time runs on either worker."""
    for item in items:
        marker = item.get_closest_marker("spawns")
        if marker is not None and marker.kwargs.get("several"):
            item.add_marker(pytest.mark.xdist_group("several"))


if os.environ.get("PYTEST_XDIST_WORKER"):  # one thread per worker: the workers share the cores
    import torch

    torch.set_num_threads(1)


def tiny_config(**overrides):
    """Config dict for a seconds-long SASRec-family run on tests/fixtures/tiny (see tiny.yaml)."""
    config = {"data_path": FIXTURES, "checkpoint_dir": "saved", "seed": 2020}
    config.update(overrides)
    return config


# End-to-end tests train long enough to learn the tiny data's item paths and must beat an untrained model by a
# margin: every SASRec-family model scores UNTRAINED_NDCG10 on tiny's test users at seed 2020 with learning_rate 0
# (test_train_modes.py::test_untrained_floor pins it); LEARN reaches 0.23-0.30 (CE, BCE, BPR, SCE, CL4SRec, DuoRec).
UNTRAINED_NDCG10 = 0.135
LEARN = {"epochs": 5, "learning_rate": 0.01}


def assert_learned(result, metric="ndcg@10", floor=0.18):
    """The run's test `metric` clears `floor` (1.33x an untrained model's ndcg@10): a broken model stays at chance."""
    value = result["test_result"][metric]
    assert value >= floor, f"test {metric} {value:.3f} < {floor}: the model learned nothing (untrained: {UNTRAINED_NDCG10})"


def assert_beats_untrained(model, result, config, margin=0.02):
    """The run's best validation score beats its untrained twin's (same config, learning_rate 0) by `margin`:
    for settings that learn tiny's paths too slowly for `assert_learned` (CLUE's [UR] token)."""
    from recbole_bt.quick_start import run_recbole_bt

    untrained = run_recbole_bt(model, "tiny", [TINY_YAML], dict(config, epochs=1, learning_rate=0.0), saved=False)
    trained, base = result["best_valid_score"], untrained["best_valid_score"]
    assert trained >= base + margin, f"best valid {trained:.3f} < untrained {base:.3f} + {margin}: nothing learned"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run in a temporary folder (RecBole writes log/, log_tensorboard/ and saved/ there) with a clean
    sys.argv (RecBole's Config reads --key=value overrides from the command line)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["pytest"])
    return tmp_path


def train_tiny(model_class, epochs=2, **overrides):
    """Train `model_class` for `epochs` epochs on tests/fixtures/tiny as run_recbole_bt does (batch 16).
    Returns (its parameters, the loss of each epoch); the item table keeps the catalog's rows only, so models
    with extra token rows ([MASK]) compare with SASRec."""
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    from recbole_bt.data import data_preparation
    from recbole_bt.quick_start import build_config
    from recbole_bt.data.loading import create_dataset

    config = build_config(model_class, "tiny", [TINY_YAML], tiny_config(train_batch_size=16, **overrides))
    init_seed(config["seed"], config["reproducibility"])
    train_data, _, _ = data_preparation(config, create_dataset(config))
    init_seed(config["seed"], config["reproducibility"])
    model = model_class(config, train_data._dataset)
    trainer = Trainer(config, model)
    losses = [trainer._train_epoch(train_data, epoch) for epoch in range(epochs)]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["item_embedding.weight"] = state["item_embedding.weight"][: model.n_items]
    return state, losses
