"""Shared fixtures: a tiny hand-made dataset (tests/fixtures/tiny) and a clean working directory per test."""
import os
import sys

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS_DIR)
FIXTURES = os.path.join(TESTS_DIR, "fixtures")
TINY_YAML = os.path.join(FIXTURES, "tiny.yaml")
RUN_SCRIPT = os.path.join(ROOT, "run_recbole_bt.py")


def tiny_config(**overrides):
    """Config dict for a seconds-long SASRec-family run on tests/fixtures/tiny (see tiny.yaml)."""
    config = {"data_path": FIXTURES, "checkpoint_dir": "saved", "seed": 2020}
    config.update(overrides)
    return config


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
    from recbole_bt.registry import create_dataset

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
