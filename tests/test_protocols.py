"""Train-mode defaults of the SASRec family (the issue-17 recipe vs RecBole's) and the protocol presets."""
import os

import pytest
from conftest import ROOT

from recbole_bt import ConfigError
from recbole_bt.config import properties_dir
from recbole_bt.quick_start import build_config

RECIPE = {"MAX_ITEM_LIST_LENGTH": 200, "train_batch_size": 128, "n_heads": 1, "hidden_dropout_prob": 0.1,
          "attn_dropout_prob": 0.1, "learning_rate": 0.001, "lr_warmup_epochs": 0, "lr_decay": "none",
          "epochs": 100}  # fmt: skip
RECBOLE = {"MAX_ITEM_LIST_LENGTH": 50, "train_batch_size": 2048, "n_heads": 2, "hidden_dropout_prob": 0.5,
           "attn_dropout_prob": 0.5, "learning_rate": 0.001, "lr_warmup_epochs": 0, "lr_decay": "none",
           "epochs": 300}  # fmt: skip
SASREC_PLUS = RECIPE  # the package's all_positions defaults are SASRec+'s recipe
PRESETS = ("recbole-loo", "sasrec-plus", "bt-sr-temporal")


def values(config, keys):
    return {key: config[key] for key in keys}


@pytest.mark.parametrize("model", ["SASRec", "BTSRec", "CL4SRec", "DuoRec"])
@pytest.mark.parametrize("dataset", ["ml-100k", "ml-1m"])
def test_sasrec_family_defaults_follow_the_train_mode(workdir, model, dataset):
    recipe = dict(RECIPE, MAX_ITEM_LIST_LENGTH=50) if dataset == "ml-100k" else RECIPE  # RecBole's ml-100k.yaml wins
    assert values(build_config(model, dataset), RECIPE) == recipe
    assert values(build_config(model, dataset, config_dict={"train_mode": "prefix"}), RECBOLE) == RECBOLE


def test_other_models_and_user_values_keep_theirs(workdir):
    gru = build_config("GRU4Rec", "ml-1m")
    assert values(gru, ["MAX_ITEM_LIST_LENGTH", "learning_rate", "epochs", "lr_decay"]) == {
        "MAX_ITEM_LIST_LENGTH": 50, "learning_rate": 0.001, "epochs": 300, "lr_decay": "none"}  # RecBole's  # fmt: skip
    config = build_config("SASRec", "ml-1m", config_dict={"MAX_ITEM_LIST_LENGTH": 30, "hidden_dropout_prob": 0.3})
    assert config["MAX_ITEM_LIST_LENGTH"] == 30 and config["hidden_dropout_prob"] == 0.3
    assert config["attn_dropout_prob"] == 0.1


@pytest.mark.parametrize("key, value, message", [
    ("hidden_dropout_prob", 1.5, r"'hidden_dropout_prob' must be a finite number in \[0, 1\), got 1.5"),
    ("MAX_ITEM_LIST_LENGTH", 0, r"'MAX_ITEM_LIST_LENGTH' must be an integer in \[1, 65536\], got 0"),
    ("train_batch_size", "many", r"'train_batch_size' must be an integer in \[1, inf\), got 'many' \(str\)"),
])  # fmt: skip
def test_bad_recipe_values_are_one_line(workdir, key, value, message):
    with pytest.raises(ConfigError, match=message):
        build_config("SASRec", "ml-100k", config_dict={key: value})


def test_presets_load_by_short_name_and_set_their_protocol(workdir):
    loo = build_config("SASRec", "ml-100k", config_file_list=["protocol/recbole-loo.yaml"])
    assert loo["eval_mask_seen"] is False and loo["eval_args"]["split"] == {"LS": "valid_and_test"}
    plus = build_config("SASRec", "ml-1m", config_file_list=["protocol/sasrec-plus.yaml"])
    assert plus["eval_mask_seen"] is True and plus["eval_args"]["mode"] == {"valid": "full", "test": "full"}
    assert values(plus, RECIPE) == SASREC_PLUS and plus["epochs"] == 100 and plus["stopping_step"] == 10
    assert plus["train_windows"] == "last" and plus["item_inter_num_interval"] == "[5,inf)"  # SASRec's 5-core data
    temporal = build_config("BTSRec", "ml-1m-realtime", config_file_list=["protocol/bt-sr-temporal.yaml"])
    assert temporal["eval_args"]["split"] == {"GTS": 0.95} and temporal["eval_mask_seen"] is True
    assert temporal["train_batch_size"] == 256 and temporal["stopping_step"] == 30
    assert temporal["gts_test_history"] == "post_cut" and temporal["adam_betas"] == [0.9, 0.98]
    assert temporal["train_windows"] == "last"
    # a path works too, and a name that is neither is the one-line missing-file error
    assert build_config("SASRec", "ml-100k", config_file_list=[os.path.join(properties_dir(), "protocol",
                                                                            "sasrec-plus.yaml")])["eval_mask_seen"]  # fmt: skip
    with pytest.raises(ConfigError, match="config file 'protocol/nosuch.yaml' not found"):
        build_config("SASRec", "ml-100k", config_file_list=["protocol/nosuch.yaml"])


def test_readme_lists_every_preset():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    files = sorted(f[:-5] for f in os.listdir(os.path.join(ROOT, "properties", "protocol")) if f.endswith(".yaml"))
    assert files == sorted(PRESETS)
    for name in PRESETS:
        assert f"protocol/{name}.yaml" in readme
