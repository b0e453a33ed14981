"""run_recbole_bt.py as a user runs it: RecBole's arguments, one-line errors with no traceback."""
import os
import subprocess
import sys

import pytest

from conftest import FIXTURES, RUN_SCRIPT, TINY_YAML


def run_script(args, cwd):
    return subprocess.run(
        [sys.executable, RUN_SCRIPT, *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.spawns
def test_trains_and_tests_recbole_model_with_overrides(tmp_path):
    result = run_script(
        ["--model=SASRec", "--dataset=tiny", f"--config_files={TINY_YAML}", f"--data_path={FIXTURES}", "--epochs=1"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test result" in result.stdout + result.stderr
    assert "epochs = 1" in result.stdout + result.stderr  # the command line wins over tiny.yaml's epochs: 2
    assert os.listdir(tmp_path / "saved")


@pytest.mark.spawns
def test_unknown_model(tmp_path):
    assert_one_line_error(run_script(["--model=SASRc"], tmp_path), "unknown model 'SASRc'", "did you mean SASRec")


@pytest.mark.spawns
def test_missing_dataset(tmp_path):
    result = run_script(["--model=SASRec", "--dataset=nosuch", f"--data_path={tmp_path}"], tmp_path)
    assert_one_line_error(result, "dataset 'nosuch' not found", str(tmp_path / "nosuch" / "nosuch.inter"), "--data_path")


@pytest.mark.spawns
def test_malformed_yaml(tmp_path):
    (tmp_path / "bad.yaml").write_text("epochs: 1\nmetrics: [Hit\n")
    result = run_script(["--model=SASRec", "--config_files=bad.yaml"], tmp_path)
    assert_one_line_error(result, "config file 'bad.yaml' is not valid YAML, line 3")


@pytest.mark.spawns
@pytest.mark.parametrize("arg", ["--metrics=['Hitt']", "--eval_args=5"])
def test_bad_recbole_values(tmp_path, arg):
    assert_one_line_error(run_script(["--model=SASRec", arg], tmp_path), "invalid configuration")
