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
