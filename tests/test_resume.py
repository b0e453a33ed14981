"""Resume (`resume_file`, RecBole's `Trainer.resume_checkpoint`): a run stopped after some epochs and resumed from
its checkpoint ends as the uninterrupted run; a checkpoint that does not fit the run is a one-line CheckpointError."""
import glob
import os

import pytest

from conftest import TINY_YAML, tiny_config
from recbole_bt import CheckpointError
from recbole_bt.quick_start import prepare, run_recbole_bt

EPOCHS, STOPPED_AFTER = 4, 2


def checkpoint_in(folder):
    (path,) = glob.glob(os.path.join(folder, "*.pth"))
    return path


@pytest.mark.parametrize("model", ["BTSRec", "CL4SRec"])  # same-target partners; the model's own augmentations
def test_resumed_run_ends_as_the_uninterrupted_run(workdir, model):
    uninterrupted = run_recbole_bt(model, "tiny", [TINY_YAML], tiny_config(epochs=EPOCHS, checkpoint_dir="full"))
    run_recbole_bt(model, "tiny", [TINY_YAML], tiny_config(epochs=STOPPED_AFTER, checkpoint_dir="part"))
    checkpoint = checkpoint_in("part")
    resumed = run_recbole_bt(model, "tiny", [TINY_YAML],
                             tiny_config(epochs=EPOCHS, checkpoint_dir="part", resume_file=checkpoint))  # fmt: skip
    assert resumed == uninterrupted
    assert checkpoint_in("part") == checkpoint  # RecBole's resume path: later best models go to the same file


@pytest.fixture
def sasrec_checkpoint(workdir):
    run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(epochs=1))
    return checkpoint_in("saved")


@pytest.mark.parametrize(
    "model, overrides, message",
    [
        ("BTSRec", {}, r"cannot resume BTSRec from '.*': its model is SASRec, this run's is BTSRec"),
        ("SASRec", {"hidden_size": 16}, r"its weights do not fit this config \(item_embedding.weight: \(31, 8\) in "
                                        r"the checkpoint, \(31, 16\) here\)"),
        ("SASRec", {"n_layers": 2}, r"trm_encoder.layer.1.* missing in the checkpoint"),
    ],
)
def test_checkpoint_that_does_not_fit_is_refused_in_one_line(sasrec_checkpoint, model, overrides, message):
    with pytest.raises(CheckpointError, match=message) as info:
        prepare(model, "tiny", [TINY_YAML], tiny_config(resume_file=sasrec_checkpoint, **overrides))
    assert "\n" not in str(info.value)


def test_missing_resume_file_is_refused(workdir):
    with pytest.raises(CheckpointError, match="checkpoint 'nowhere.pth' not found"):
        prepare("SASRec", "tiny", [TINY_YAML], tiny_config(resume_file="nowhere.pth"))
