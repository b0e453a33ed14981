"""The RecBole 1.2.1 fixes in recbole_bt.compat, each shown to be needed and to work."""
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import ROOT
from recbole_bt import Config


def run_python(code):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_anomaly_detection_is_off_after_a_sequential_config(workdir):
    Config("SASRec", "ml-100k")  # imports every sequential model, sine.py included
    assert not torch.is_anomaly_enabled()


@pytest.mark.spawns
def test_recbole_turns_anomaly_detection_on_and_recbole_bt_turns_it_off():
    out = run_python(
        """
        import torch
        import recbole.model.sequential_recommender  # RecBole's sine.py: set_detect_anomaly(True) at import
        print(torch.is_anomaly_enabled())
        import recbole_bt
        print(torch.is_anomaly_enabled())
        from recbole.model.sequential_recommender import sine  # already imported: does not run again
        print(torch.is_anomaly_enabled())
        """
    )
    assert out.split() == ["True", "False", "False"]


@pytest.mark.spawns
def test_importing_recbole_bt_does_not_import_ray():
    out = run_python(
        """
        import sys
        import recbole_bt, recbole_bt.quick_start
        print("ray" in sys.modules)
        """
    )
    assert out.strip() == "False"


def test_trainer_reloads_its_checkpoints_under_weights_only_default(workdir):
    """torch >= 2.6 loads with weights_only=True by default, which refuses RecBole checkpoints."""
    import recbole.trainer.trainer as trainer_module

    config = Config("SASRec", "ml-100k")
    torch.save({"config": config, "state_dict": {}}, "ckpt.pth", pickle_protocol=4)
    assert torch.load("ckpt.pth", weights_only=False)["config"]["model"] == "SASRec"
    try:
        torch.load("ckpt.pth")
        refused = False
    except Exception:
        refused = True
    assert refused  # the bug: torch's default refuses it
    assert trainer_module.torch.load("ckpt.pth", map_location="cpu")["config"]["model"] == "SASRec"  # the fix
    assert trainer_module.torch.no_grad is torch.no_grad  # everything else is torch itself


def test_collector_num_items_survives_cpu(workdir):
    from recbole.evaluator.collector import Collector

    from recbole_bt.compat import HostInt

    value = HostInt(7)
    assert value.cpu() == 7 and isinstance(value.cpu(), int)
    assert getattr(Collector.data_collect, "_recbole_bt_fixed", False)


def test_ensure_dir_survives_a_concurrent_creation(tmp_path, monkeypatch):
    """Two runs starting in one folder: the other one creates ./log between RecBole's check and its makedirs."""
    import os

    from recbole.utils import ensure_dir

    (tmp_path / "log").mkdir()
    monkeypatch.setattr(os.path, "exists", lambda path: False)  # the check saw no folder
    ensure_dir(str(tmp_path / "log"))  # RecBole 1.2.1: FileExistsError
