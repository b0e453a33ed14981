"""Determinism: the same config and seed give the same metrics and the same weights, for every model of the package
(pretraining models in both stages); another seed gives other weights. The same-target sampler and the
augmentations draw from generators seeded with RecBole's `seed`, so nothing depends on the process's history."""
import glob
import os
import subprocess
import sys

import pytest
import torch

from conftest import TESTS_DIR, TINY_YAML, tiny_config
from recbole_bt.compat import load_checkpoint
from recbole_bt.quick_start import run_recbole_bt
from recbole_bt.registry import package_models

SMALL = {"hidden_size": 8, "n_heads": 2, "inner_size": 16, "epochs": 1, "pretrain_epochs": 1}
PRETRAINING = {"BTPretrain", "CLUE", "DualEncoder"}  # train_stage pretrain, then finetune
MODELS = ["SASRec", "BTSRec", "CL4SRec", "DuoRec", "CLUEZero", *sorted(PRETRAINING)]


def test_every_package_model_is_covered():
    assert set(MODELS) == set(package_models()) - {"SequencePretrainer"}


def weights(folder):
    (path,) = glob.glob(os.path.join(folder, "*.pth"))
    return load_checkpoint(path)["state_dict"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def train(model, folder, seed=2020, **overrides):
    """One run in its own checkpoint folder: (result without file names, the saved weights)."""
    result = run_recbole_bt(model, "tiny", [TINY_YAML], tiny_config(checkpoint_dir=folder, seed=seed, **SMALL, **overrides))
    if "pretrain" in result:
        result["pretrain"] = {k: v for k, v in result["pretrain"].items() if k != "pretrained_model_file"}
    return result, weights(folder)


@pytest.mark.parametrize("model", MODELS)
def test_same_seed_same_metrics_and_weights_other_seed_other_weights(workdir, model):
    first, first_weights = train(model, "first")
    second, second_weights = train(model, "second")
    assert first == second
    assert_same_weights(first_weights, second_weights)
    _, other_weights = train(model, "other", seed=2021)
    assert any(not torch.equal(first_weights[k], other_weights[k]) for k in first_weights)

    if model in PRETRAINING:  # fine-tune the pretrained encoder twice
        (pretrained,) = glob.glob(os.path.join("first", "*.pth"))
        finetune = {"train_stage": "finetune", "pre_model_path": pretrained}
        first, first_weights = train(model, "finetune1", **finetune)
        second, second_weights = train(model, "finetune2", **finetune)
        assert first == second and first["test_result"] is not None
        assert_same_weights(first_weights, second_weights)


WORKER_RUNS = """
import sys
sys.argv = ["worker-test"]
from test_determinism import assert_same_weights, train
first, first_weights = train("BTSRec", "first", worker=1)
second, second_weights = train("BTSRec", "second", worker=1)
assert first == second, (first, second)
assert_same_weights(first_weights, second_weights)
print("same")
"""


@pytest.mark.spawns
def test_same_target_partners_repeat_with_dataloader_workers(workdir):
    """With `worker: 1` the partners are drawn in a worker process, from a generator seeded by torch's worker
    seed (itself drawn from the dataloader's seeded generator): runs still repeat. In a fresh interpreter: a
    dataloader worker is forked, and forking the test process (which holds the threads of earlier tests'
    TensorBoard writers and torch pools) can deadlock the child on a lock one of those threads held."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS_DIR, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", WORKER_RUNS], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip().endswith("same"), done.stderr[-3000:]
