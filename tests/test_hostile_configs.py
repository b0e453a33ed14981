"""Hostile configs (issue 9): random values for every numeric key of each model's YAML give either a run (a model
is built and one training step has a finite loss) or a one-line ValueError / TypeError that names the key, never a
crash deep inside torch. Values come from hypothesis; only accepted ones load the tiny dataset (cached per model)."""
import math
import os
import re
import sys
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import recbole_bt.model
from conftest import TINY_YAML, tiny_config
from recbole_bt import ConfigError
from recbole_bt.config import properties_dir, recbole_properties_dir
from recbole_bt.config_ranges import Range, numeric_ranges
from recbole_bt.data import data_preparation
from recbole_bt.quick_start import build_config, build_model
from recbole_bt.data.loading import create_dataset
from recbole_bt.registry import get_model, get_trainer

NUMERIC_LINE = re.compile(r"^(\w+)\s*:[^#]*#\s*\((int|float)\)")
DATA_KEYS = {"MAX_ITEM_LIST_LENGTH", "train_batch_size", "eval_batch_size", "train_stride", "seed", "worker"}
CHECKED_ELSEWHERE = {"train_stride"}  # a range that depends on MAX_ITEM_LIST_LENGTH: Config._check_model_options
MODELS = sorted(recbole_bt.model.__all__)


def yaml_numeric_keys(path):
    """Top-level keys documented `# (int)` or `# (float)` in a YAML file."""
    with open(path, encoding="utf-8") as f:
        return [m[1] for m in map(NUMERIC_LINE.match, f) if m]


def owner_model(class_name):
    """The package model that tests the keys of `<class_name>.yaml`: that model, else its first subclass."""
    if class_name in MODELS:
        return class_name
    return next(m for m in MODELS if class_name in [c.__name__ for c in get_model(m).__mro__])


def cases():
    """(model, key) for every numeric key of every package YAML; SASRec also takes RecBole's SASRec.yaml and the
    overall keys (RecBole's, recbole_bt's, MAX_ITEM_LIST_LENGTH)."""
    pairs = []
    for name in sorted(os.listdir(os.path.join(properties_dir(), "model"))):
        if name.endswith(".yaml"):
            model = owner_model(name[: -len(".yaml")])
            pairs += [(model, key) for key in yaml_numeric_keys(os.path.join(properties_dir(), "model", name))]
    for path in (
        os.path.join(recbole_properties_dir(), "model", "SASRec.yaml"),
        os.path.join(recbole_properties_dir(), "overall.yaml"),
        os.path.join(properties_dir(), "overall.yaml"),
    ):
        pairs += [("SASRec", key) for key in yaml_numeric_keys(path)]
    pairs.append(("SASRec", "MAX_ITEM_LIST_LENGTH"))
    return sorted(set(pairs))


CASES = cases()

HOSTILE = st.sampled_from(
    [-1, -(10**6), 0, 10**12, -1.5, 0.0, -0.0, 1e12, -1e12, 1e300, 1e-300, math.nan, math.inf, -math.inf]
)
WRONG_TYPES = st.one_of(
    st.text(max_size=6),
    st.lists(st.integers(-2, 3), max_size=3),
    st.none(),
    st.booleans(),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def values(key):
    """Hostile values and wrong types, and plain numbers (workers stay few: each one is a process)."""
    plain = st.one_of(
        st.integers(-3, 1 if key == "worker" else 64),
        st.integers(1, 1 if key == "worker" else 8),
        st.floats(-2, 2).filter(lambda x: x == 0 or abs(x) >= 1e-3),
    )
    return st.one_of(HOSTILE, WRONG_TYPES, plain)


@pytest.fixture(scope="module", autouse=True)
def hostile_workdir(tmp_path_factory):
    """One working folder and a clean sys.argv for the whole module (hypothesis reruns the test body)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path_factory.mktemp("hostile"))
        mp.setattr(sys, "argv", ["pytest"])
        yield


_train_data = {}


def train_data(config, key, value):
    """The training dataloader of tests/fixtures/tiny for `config`, built once per model unless `key` shapes it."""
    cache_key = (config["model"], key, repr(value)) if key in DATA_KEYS else (config["model"],)
    if cache_key not in _train_data:
        _train_data[cache_key] = data_preparation(config, create_dataset(config))[0]
    return _train_data[cache_key]


def one_step(model_name, key, value):
    """Build the config with `key: value`; if it is accepted, build the model and trainer and take one step."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = build_config(model_name, "tiny", [TINY_YAML], tiny_config(**{key: value}))
        if key == "worker":  # accepted: the step runs in-process (forking this threaded test process can deadlock;
            config["worker"] = 0  # dataloader workers are exercised in a fresh interpreter by test_determinism)
        train = train_data(config, key, value)
        model = build_model(config, train._dataset)
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        model.train()
        trainer.optimizer.zero_grad()
        loss = model.calculate_loss(next(iter(train)))
        loss.backward()
        trainer.optimizer.step()
    return loss


def test_cases_cover_every_package_yaml_and_the_sasrec_keys():
    models = {m for m, _ in CASES}
    assert {"SASRec", "BTSRec", "CL4SRec", "DuoRec", "CLUE", "DualEncoder", "BTPretrain"} <= models
    keys = {k for _, k in CASES}
    assert {"hidden_size", "n_heads", "layer_norm_eps", "learning_rate", "epochs", "alpha", "tau", "temperature",
            "pretrain_epochs", "predictor_hidden", "MAX_ITEM_LIST_LENGTH"} <= keys  # fmt: skip


@pytest.mark.parametrize("model_name,key", CASES)
def test_numeric_key_has_a_range(model_name, key):
    """The central table (recbole_bt.config.NUMERIC_KEYS) knows every numeric key of the model's YAML."""
    assert key in CHECKED_ELSEWHERE or isinstance(numeric_ranges(get_model(model_name)).get(key), Range)


@pytest.mark.parametrize("model_name,key", CASES)
@settings(max_examples=20, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_hostile_value_runs_or_names_the_key(model_name, key, data):
    value = data.draw(values(key), label=key)
    try:
        loss = one_step(model_name, key, value)
    except (ValueError, TypeError) as e:
        message = str(e)
        assert "\n" not in message and key in message, f"{model_name} {key}={value!r}: {type(e).__name__}: {message}"
        return
    assert torch.isfinite(loss), f"{model_name} {key}={value!r}: loss {loss.item()}"


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("hidden_size", -3, "'hidden_size' must be an integer in [1, 65536], got -3"),
        ("hidden_size", "big", "'hidden_size' must be an integer in [1, 65536], got 'big' (str)"),
        ("hidden_size", [64], "'hidden_size' must be an integer in [1, 65536], got [64] (list)"),
        ("n_layers", 2.5, "'n_layers' must be an integer in [1, 1024], got 2.5"),
        ("n_heads", 3, "'n_heads' must divide hidden_size=8"),
        ("hidden_dropout_prob", 1.0, "'hidden_dropout_prob' must be a finite number in [0, 1), got 1.0"),
        ("learning_rate", math.nan, "'learning_rate' must be a finite number in [0, inf), got nan"),
        ("train_batch_size", True, "'train_batch_size' must be an integer in [1, inf), got True (bool)"),
        ("epochs", "all", "'epochs' must be an integer in [0, inf), got 'all' (str)"),
        ("stopping_step", None, "'stopping_step' must be an integer in [0, inf), got None (NoneType)"),
        ("layer_norm_eps", 1e-300, "with a magnitude in [1e-30, 1e30] (torch computes in float32)"),
        ("initializer_range", 1e12, "'initializer_range' must be a finite number in [0, 1]"),
        ("MAX_ITEM_LIST_LENGTH", 0, "'MAX_ITEM_LIST_LENGTH' must be an integer in [1, 65536], got 0"),
        ("seed", 10**12, "'seed' must be an integer in [0, 4294967295]"),
    ],
)
def test_bad_value_is_one_line_before_any_data(key, value, expected):
    with pytest.raises(ConfigError) as error:
        build_config("SASRec", "tiny", [TINY_YAML], tiny_config(**{key: value}))
    assert expected in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "model_name,key,value",
    [("BTSRec", "alpha", -0.1), ("BTSRec", "train_batch_size", 1), ("CL4SRec", "tau", 0), ("DuoRec", "lmd", "x"),
     ("DualEncoder", "temperature", -1.0), ("CLUE", "predictor_hidden", 0), ("BTPretrain", "save_step", 0)],
)  # fmt: skip
def test_package_model_keys_are_checked_in_the_config(model_name, key, value):
    with pytest.raises(ConfigError, match=f"'{key}' must be"):
        build_config(model_name, "tiny", [TINY_YAML], tiny_config(**{key: value}))


def test_integral_float_is_taken_as_the_integer_and_none_where_allowed():
    config = build_config("SASRec", "tiny", [TINY_YAML], tiny_config(hidden_size=16.0, epochs=1e3, n_buckets=None))
    assert config["hidden_size"] == 16 and isinstance(config["hidden_size"], int) and config["epochs"] == 1000
    assert build_config("BTPretrain", "tiny", [TINY_YAML], tiny_config(**{"lambda": None}))["lambda"] is None


def test_command_line_and_yaml_values_are_checked(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", ["run_recbole_bt.py", "--hidden_size=abc"])
    with pytest.raises(ConfigError, match="'hidden_size' must be an integer in \\[1, 65536\\], got 'abc' \\(str\\)"):
        build_config("SASRec", "tiny", [TINY_YAML], tiny_config())
    monkeypatch.setattr(sys, "argv", ["pytest"])
    user_file = tmp_path / "user.yaml"
    user_file.write_text("attn_dropout_prob: -1e-1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'attn_dropout_prob' must be a finite number in \\[0, 1\\), got -0.1"):
        build_config("SASRec", "tiny", [TINY_YAML, str(user_file)], tiny_config())


def test_recbole_models_get_the_overall_checks_only():
    config = build_config("GRU4Rec", "tiny", [TINY_YAML], tiny_config(train_neg_sample_args=None))
    assert "n_heads" not in numeric_ranges(get_model("GRU4Rec")) and config["learning_rate"] > 0
    with pytest.raises(ConfigError, match="'learning_rate' must be"):
        build_config("GRU4Rec", "tiny", [TINY_YAML], tiny_config(train_neg_sample_args=None, learning_rate=-1))


def test_range_rejects_a_malformed_interval():
    with pytest.raises(ValueError, match="interval like"):
        Range(int, "1..3")
