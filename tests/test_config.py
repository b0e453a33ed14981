"""recbole_bt's Config: package YAML layered into RecBole's precedence, clear errors, unknown-key warnings."""
import os
import re
import sys
import warnings

import pytest

import recbole_bt.config
from conftest import FIXTURES
from recbole_bt import Config, ConfigError
from recbole_bt.config import UnknownConfigKeyWarning, UnusedConfigKeyWarning


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)


@pytest.fixture
def package_properties(tmp_path, monkeypatch):
    """Replace recbole_bt's properties/ with one where every layer sets stopping_step to its own rank."""
    props = tmp_path / "props"
    write(props / "overall.yaml", "stopping_step: 1\nmetrics: [Hit]\ntopk: [3]\nvalid_metric: Hit@3\n")
    write(props / "model" / "SASRec.yaml", "stopping_step: 2\n")
    write(props / "dataset" / "tiny.yaml", "stopping_step: 3\n")
    monkeypatch.setattr(recbole_bt.config, "properties_dir", lambda: str(props))
    clear = lambda: (recbole_bt.config.known_config_keys.cache_clear(), recbole_bt.config.package_config_keys.cache_clear())  # noqa: E731
    clear()  # the key lists are cached: never keep the replaced folder's
    yield props
    clear()


def test_precedence_package_dataset_file_dict_cmdline(workdir, package_properties, monkeypatch):
    user_file = write(workdir / "user.yaml", "stopping_step: 4\n")

    def stopping_step(files=None, config_dict=None):
        return Config("SASRec", "tiny", files, config_dict)["stopping_step"]

    monkeypatch.setattr(sys, "argv", ["run_recbole_bt.py", "--stopping_step=6"])
    assert stopping_step([user_file], {"stopping_step": 5}) == 6  # command line > config_dict
    monkeypatch.setattr(sys, "argv", ["run_recbole_bt.py"])
    assert stopping_step([user_file], {"stopping_step": 5}) == 5  # config_dict > config files
    assert stopping_step([user_file]) == 4  # config files > dataset YAML
    assert stopping_step() == 3  # dataset YAML > package model YAML
    os.remove(package_properties / "dataset" / "tiny.yaml")
    assert stopping_step() == 2  # package model YAML > package overall.yaml
    os.remove(package_properties / "model" / "SASRec.yaml")
    assert stopping_step() == 1  # package overall.yaml > RecBole's overall.yaml (10)


def test_recbole_dataset_yaml_outranks_package_overall(workdir, package_properties):
    write(package_properties / "overall.yaml", "load_col: {inter: [user_id, item_id]}\n")
    config = Config("SASRec", "ml-100k")
    assert config["load_col"]["inter"] == ["user_id", "item_id", "rating", "timestamp"]  # RecBole's ml-100k.yaml


def test_real_package_defaults(workdir):
    config = Config("SASRec", "ml-100k")
    assert config["metrics"] == ["Hit", "NDCG", "MRR"] and config["topk"] == [1, 5, 10, 20]
    assert Config("BTSRec", "ml-100k")["metrics"] == ["Hit", "NDCG", "MRR", "Coverage", "Effective_Rank"]  # BTSRec.yaml
    assert config["valid_metric"] == "NDCG@10"
    assert config["load_col"]["user"] == ["user_id", "age", "gender", "occupation"]  # properties/dataset/ml-100k.yaml
    assert config["eval_args"]["split"] == {"LS": "valid_and_test"} and config["eval_args"]["order"] == "TO"
    assert config["hidden_size"] == 64  # RecBole's SASRec.yaml still applies
    assert config["train_mode"] == "all_positions" and config["train_batch_size"] == 128  # properties/model/SASRec.yaml
    assert Config("GRU4Rec", "ml-100k")["train_mode"] == "prefix"  # properties/overall.yaml


def test_value_metric_models_keep_recboles_evaluation(workdir):
    config = Config("FM", "ml-100k")  # context-aware: RecBole evaluates it with AUC / LogLoss
    assert config["metrics"] == ["AUC", "LogLoss"] and config["valid_metric"] == "AUC"


def test_dataset_defaults_to_ml_100k(workdir):
    config = Config("SASRec")
    assert config["dataset"] == "ml-100k" and os.path.isfile(os.path.join(config["data_path"], "ml-100k.inter"))


def test_sequential_ce_needs_no_negatives(workdir):
    assert Config("SASRec")["train_neg_sample_args"]["distribution"] == "none"  # RecBole alone raises here
    bpr = Config("SASRec", config_dict={"loss_type": "BPR"})
    assert bpr["train_neg_sample_args"]["distribution"] == "uniform"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("epochs: 5\nmetrics: [Hit, NDCG\n", r"not valid YAML, line 3, column 1"),
        ("epochs: 5\n  bad_indent: 1\n", r"not valid YAML, line 2, column 13"),
        ("- a list\n- not a mapping\n", r"must be a mapping of 'key: value' lines, not a list"),
    ],
)
def test_malformed_yaml_names_file_and_line(workdir, text, expected):
    path = write(workdir / "bad.yaml", text)
    with pytest.raises(ConfigError, match=expected) as info:
        Config("SASRec", "tiny", [path])
    assert path in str(info.value) and "\n" not in str(info.value)


def test_missing_and_empty_config_files(workdir):
    with pytest.raises(ConfigError, match="config file 'nope.yaml' not found"):
        Config("SASRec", "tiny", ["nope.yaml"])
    empty = write(workdir / "empty.yaml", "# only a comment\n")
    assert Config("SASRec", "tiny", [empty])["epochs"] == 100  # the SASRec family's all_positions default


def test_recbole_config_errors_become_one_line(workdir):
    with pytest.raises(ConfigError, match="invalid configuration: There is no metric named 'Hitt'"):
        Config("SASRec", "tiny", config_dict={"metrics": ["Hitt"]})


def test_no_model_is_a_clear_error(workdir):
    with pytest.raises(ConfigError, match="no model given"):
        Config()


def test_unknown_key_warns_with_closest_known_key(workdir):
    with pytest.warns(UnknownConfigKeyWarning, match="unknown config key 'learning_rat'.*did you mean 'learning_rate'"):
        config = Config("SASRec", "tiny", config_dict={"learning_rat": 0.01, "hidden_size": 8})
    assert len(config.unknown_key_warnings) == 1


def test_keys_the_model_reads_do_not_warn(workdir, recwarn):
    # n_heads: SASRec's YAML; pre_model_path: any model warm-starts from it; embedding_size: GRU4Rec's own YAML
    Config("SASRec", "tiny", config_dict={"n_heads": 1, "pre_model_path": "x", "data_path": FIXTURES})
    Config("GRU4Rec", "tiny", config_dict={"embedding_size": 8, "train_stage": "finetune", "data_path": FIXTURES})
    assert not [w for w in recwarn if issubclass(w.category, UnknownConfigKeyWarning)]


def test_a_key_only_other_models_read_warns_with_those_models(workdir):
    """`lmd` is CL4SRec's, DuoRec's and RecBole's FEARec's weight: given to BTSRec (whose weight is alpha) it changes
    nothing, and -0.5 is not even checked against a range; the warning names the models that read it. The models
    that declare it take it without a word."""
    with pytest.warns(UnusedConfigKeyWarning) as caught:
        config = Config("BTSRec", "tiny", config_dict={"lmd": -0.5, "alpha": 0.2, "data_path": FIXTURES})
    assert [str(w.message) for w in caught] == config.unknown_key_warnings == [
        "config key 'lmd' has no effect on BTSRec: only other models read it (CL4SRec, DuoRec, FEARec)"]
    assert issubclass(UnusedConfigKeyWarning, UnknownConfigKeyWarning)  # held back and logged as unknown keys are
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownConfigKeyWarning)
        assert Config("DuoRec", "tiny", config_dict={"lmd": 0.1, "data_path": FIXTURES})["lmd"] == 0.1
        Config("CLUE", "tiny", config_dict={"pretrain_epochs": 3, "data_path": FIXTURES})  # SequencePretrainer.yaml's


def test_model_yaml_inherits_from_base_classes(workdir):
    """BTSRec subclasses recbole_bt's SASRec, which subclasses RecBole's: all three YAML files apply, in order."""
    config = Config("BTSRec", "tiny", config_dict={"data_path": FIXTURES})
    assert config["n_layers"] == 2 and config["inner_size"] == 256  # RecBole's SASRec.yaml
    assert config["train_mode"] == "all_positions" and config["train_batch_size"] == 128  # recbole_bt's SASRec.yaml
    assert config["alpha"] == 0.2 and config["same_target_sampling"] is True  # BTSRec.yaml
    assert Config("SASRec", "tiny", config_dict={"data_path": FIXTURES})["same_target_sampling"] is False



@pytest.mark.parametrize("model", ["CL4SRec", "DuoRec"])
def test_contrastive_weight_default_follows_the_train_mode(workdir, model):
    """lmd: ~ is the value chosen on validation in all_positions, the paper's (one target per row) in prefix; a
    value given by the user wins in both modes."""
    def lmd(**config):
        return Config(model, "tiny", config_dict={"data_path": FIXTURES, **config})["lmd"]

    assert lmd() == 0.001 and lmd(train_mode="prefix") == 0.1
    assert lmd(lmd=0.05) == 0.05 and lmd(train_mode="prefix", lmd=0.0) == 0.0


_CONFIG_ACCESS = re.compile(r"""config\s*(?:\[\s*|\.get\(\s*)["']([A-Za-z_][A-Za-z0-9_]*)["']""")


def _keys_read_in(folder):
    keys = set()
    for root, _, files in os.walk(folder):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
                    keys.update(_CONFIG_ACCESS.findall(f.read()))
    return keys


def test_every_key_the_code_reads_is_known_from_yaml():
    """Key names come from the YAML files (no source scan at run time): every key recbole_bt's code reads is
    declared there, and RecBole's undeclared keys are the listed ones."""
    known = recbole_bt.config.known_config_keys()
    ours = _keys_read_in(recbole_bt.config.PACKAGE_DIR)
    assert sorted(ours - known) == []
    recbole_code = _keys_read_in(os.path.dirname(recbole_bt.config.recbole_properties_dir()))
    undeclared = recbole_bt.config.RECBOLE_UNDECLARED_KEYS
    assert sorted(recbole_code - (known - undeclared)) == sorted(undeclared)
