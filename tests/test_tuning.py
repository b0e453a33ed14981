"""RecBole's HyperTuning runs recbole_bt's models (and RecBole's) through `recbole_bt.tuning.run_hyper`, and a
params file the user got wrong is a one-line ConfigError before any trial."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("hyperopt")

from conftest import FIXTURES, ROOT, TINY_YAML, tiny_config  # noqa: E402
from recbole_bt import ConfigError  # noqa: E402
from recbole_bt.errors import ModelNotFoundError  # noqa: E402
from recbole_bt.tuning import run_hyper  # noqa: E402

SCRIPT = os.path.join(ROOT, "run_hyper_bt.py")


def params_file(tmp_path, text):
    path = tmp_path / "hyper.test"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("model, param, value", [("BTSRec", "alpha", 0.1), ("SASRec", "learning_rate", 0.002)])
def test_one_trial(workdir, model, param, value):
    output = workdir / "hyper.result"
    result = run_hyper(
        model, "tiny", params_file(workdir, f"{param} choice [{value}]\n"), [TINY_YAML],
        tiny_config(epochs=1), algo="exhaustive", max_evals=1, output_file=str(output),
    )  # fmt: skip
    assert result["best_params"] == {param: value}
    best = result["best_result"]
    assert best["model"] == model
    assert best["test_result"] and all(isinstance(v, float) for v in best["test_result"].values())
    assert best["best_valid_score"] is not None
    assert list(result["params2result"]) == [f"{param}:{value}"]
    assert f"{param}:{value}" in output.read_text()


def test_random_search_over_a_range(workdir):
    file = params_file(workdir, "# a comment\n\nalpha uniform 0.1,0.9\n")
    result = run_hyper("BTSRec", "tiny", file, [TINY_YAML], tiny_config(epochs=1), algo="random", max_evals=1)
    assert list(result["best_params"]) == ["alpha"] and 0.1 <= result["best_params"]["alpha"] <= 0.9
    assert result["best_result"]["test_result"]


@pytest.mark.spawns
def test_script(workdir):
    file = params_file(workdir, "alpha choice [0.2]\n")
    config = workdir / "tiny.yaml"
    config.write_text(open(TINY_YAML).read() + f"data_path: {FIXTURES}\nepochs: 1\n")
    ok = subprocess.run([sys.executable, SCRIPT, "--model=BTSRec", "--dataset=tiny", f"--config_files={config}",
                         f"--params_file={file}", "--checkpoint_dir=saved"], capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "best params: {'alpha': 0.2}" in ok.stdout
    bad = subprocess.run([sys.executable, SCRIPT, "--model=BTSRec", "--params_file=nope.test"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: params file 'nope.test' not found"


def one_line_error(excinfo):
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


def test_missing_params_file(workdir):
    with pytest.raises(ConfigError) as e:
        run_hyper("BTSRec", "tiny", str(workdir / "nope.test"), [TINY_YAML], tiny_config())
    assert "nope.test" in one_line_error(e) and "not found" in str(e.value)


@pytest.mark.parametrize(
    "line, expected",
    [
        ("alpha choice", "line 2"),
        ("alpha choose [0.1]", "unknown parameter type"),
        ("alpha choice [0.1,", "choice needs"),
        ("alpha uniform 0.5", "2 comma-separated numbers"),
    ],
)
def test_malformed_params_line(workdir, line, expected):
    with pytest.raises(ConfigError) as e:
        run_hyper("BTSRec", "tiny", params_file(workdir, f"learning_rate choice [0.001]\n{line}\n"), [TINY_YAML], tiny_config())
    assert expected in one_line_error(e)


def test_unknown_model_and_algo(workdir):
    file = params_file(workdir, "alpha choice [0.1]\n")
    with pytest.raises(ModelNotFoundError) as e:
        run_hyper("BTSRecc", "tiny", file, [TINY_YAML], tiny_config())
    one_line_error(e)
    with pytest.raises(ConfigError) as e:
        run_hyper("BTSRec", "tiny", file, [TINY_YAML], tiny_config(), algo="grid")
    one_line_error(e)
    with pytest.raises(ConfigError) as e:  # exhaustive search has nothing to enumerate in a range
        run_hyper("BTSRec", "tiny", params_file(workdir, "alpha uniform 0,1\n"), [TINY_YAML], tiny_config())
    assert "random or bayes" in one_line_error(e)
