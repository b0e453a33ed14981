"""End-to-end runs on the tiny dataset: RecBole's result dict, checkpoint round trips, dataset errors."""
import glob
import os
import urllib.error

import pytest
import torch
from recbole.trainer import Trainer

from conftest import FIXTURES, TINY_YAML, tiny_config
from recbole_bt import CheckpointError, ConfigError, DatasetNotFoundError, register_model
from recbole_bt.quick_start import load_data_and_model, run_recbole_bt
from recbole_bt.registry import unregister_model
from toy_model import MeanPoolRec


@pytest.fixture
def mean_pool_registered():
    register_model(MeanPoolRec)
    yield
    unregister_model("MeanPoolRec")


def only_checkpoint(folder="saved"):
    files = glob.glob(os.path.join(folder, "*.pth"))
    assert len(files) == 1, files
    return files[0]


def assert_round_trip(result):
    """load_data_and_model rebuilds config, data and model; the reloaded model scores the same test metrics."""
    config, model, dataset, train_data, valid_data, test_data = load_data_and_model(only_checkpoint())
    reloaded = Trainer(config, model).evaluate(test_data, load_best_model=False, show_progress=False)
    assert dict(reloaded) == dict(result["test_result"])


def test_sasrec_run_returns_recboles_result_dict_and_round_trips(workdir):
    result = run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config())
    assert set(result) == {"best_valid_score", "valid_score_bigger", "best_valid_result", "test_result",  # RecBole's
                           "protocol", "epochs_run", "best_epoch"}  # recbole_bt's
    assert result["protocol"].endswith("seen items not masked (RecBole's default)")
    assert result["epochs_run"] == 2 and result["best_epoch"] in (1, 2)
    assert result["valid_score_bigger"] is True
    assert set(result["test_result"]) == {f"{m}@{k}" for m in ("hit", "ndcg", "mrr") for k in (1, 5, 10, 20)}
    assert 0 < result["test_result"]["hit@20"] <= 1
    assert os.path.isdir("log")  # RecBole's log folder, in the working directory
    assert_round_trip(result)


def test_test_per_user_gives_each_test_users_metrics(workdir):
    """test_per_user: the per-user NDCG@K and HR@K average to the test result, one value per test user."""
    result = run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(epochs=2, test_per_user=True, topk=[5, 10]))
    per_user = result["test_per_user"]
    assert len(per_user["user"]) == len(set(per_user["user"])) == 40  # tiny: 40 users, one test row each
    for key in ("ndcg@5", "hit@5", "ndcg@10", "hit@10"):
        assert sum(per_user[key]) / 40 == pytest.approx(result["test_result"][key], abs=1e-4)
    assert "test_per_user" not in run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(epochs=1))


def test_package_model_trains_and_round_trips(workdir, mean_pool_registered):
    result = run_recbole_bt("MeanPoolRec", "tiny", [TINY_YAML], tiny_config())
    assert result["test_result"]["hit@20"] > 0
    assert_round_trip(result)


def test_coverage_and_gini_metrics_run(workdir):
    """RecBole's Collector calls .cpu() on ints; ItemCoverage and GiniIndex crash without recbole_bt's fix."""
    config = tiny_config(metrics=["Hit", "ItemCoverage", "GiniIndex"], topk=[5], valid_metric="Hit@5", epochs=1)
    result = run_recbole_bt("SASRec", "tiny", [TINY_YAML], config)
    assert 0 < result["test_result"]["itemcoverage@5"] <= 1
    assert 0 <= result["test_result"]["giniindex@5"] <= 1


def test_load_data_and_model_errors(workdir, mean_pool_registered):
    with pytest.raises(CheckpointError, match="checkpoint 'missing.pth' not found"):
        load_data_and_model("missing.pth")
    with open("garbage.pth", "w") as f:
        f.write("not a checkpoint")
    with pytest.raises(CheckpointError, match="'garbage.pth' is not a RecBole checkpoint"):
        load_data_and_model("garbage.pth")
    torch.save({"weights": torch.zeros(2)}, "weights.pth")
    with pytest.raises(CheckpointError, match="no 'config' and 'state_dict'"):
        load_data_and_model("weights.pth")

    run_recbole_bt("MeanPoolRec", "tiny", [TINY_YAML], tiny_config(epochs=1))
    checkpoint = torch.load(only_checkpoint(), weights_only=False)
    checkpoint["state_dict"]["item_embedding.weight"] = torch.zeros(3, 3)  # another model's shapes
    torch.save(checkpoint, "other.pth")
    with pytest.raises(CheckpointError, match="does not fit model MeanPoolRec"):
        load_data_and_model("other.pth")


def test_missing_dataset_names_folder_and_files(workdir):
    with pytest.raises(DatasetNotFoundError) as info:
        run_recbole_bt("SASRec", "nosuch", config_dict={"data_path": str(workdir / "data")})
    message = str(info.value)
    assert f"{workdir / 'data' / 'nosuch' / 'nosuch.inter'}" in message
    assert "not a dataset RecBole can download" in message and "--data_path" in message
    assert "\n" not in message


def test_known_dataset_offline_says_download_failed(workdir, monkeypatch):
    import recbole.data.dataset.dataset as recbole_dataset

    def offline(url):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(recbole_dataset, "decide_download", offline)
    with pytest.raises(DatasetNotFoundError) as info:
        run_recbole_bt("SASRec", "ml-1m", config_dict={"data_path": str(workdir / "data")})
    message = str(info.value)
    assert "dataset 'ml-1m' not found" in message and "downloading it from https://" in message
    assert "Name or service not known" in message and "--data_path" in message
    assert not os.path.exists(workdir / "data" / "ml-1m")  # no empty folder left to block a later download


def test_sequential_model_without_time_field_is_a_clear_error(workdir):
    config = tiny_config(load_col={"inter": ["user_id", "item_id"]})
    with pytest.raises(ConfigError, match="add it to load_col"):
        run_recbole_bt("SASRec", "tiny", [TINY_YAML], config)


def test_real_ml1m_files_load_with_package_yaml(workdir):
    """properties/dataset/ml-1m.yaml against the shared ML-1M atomic files, when they are beside the repo."""
    shared = os.path.join(os.path.dirname(os.path.dirname(FIXTURES)), "..", "shared", "datasets")
    if not os.path.isfile(os.path.join(shared, "ml-1m", "ml-1m.user")):
        pytest.skip("../shared/datasets/ml-1m is not here")
    from recbole_bt.quick_start import build_config
    from recbole_bt.data.loading import create_dataset

    dataset = create_dataset(build_config("SASRec", "ml-1m", config_dict={"data_path": shared}))
    assert dataset.user_num - 1 == 6040 and dataset.item_num - 1 == 3706 and dataset.inter_num == 1000209
    assert {"age", "gender", "occupation"} <= set(dataset.user_feat.columns)
    assert "genre" in dataset.item_feat.columns


def test_public_epoch_hooks(workdir):
    """fit's callback_fn sees each validation's result and the training time so far; train_one_epoch and
    validate drive the same epochs outside fit."""
    from recbole_bt.quick_start import prepare

    _, train_data, valid_data, _, trainer = prepare("SASRec", "tiny", [TINY_YAML], tiny_config(epochs=3))
    seen = []
    trainer.fit(train_data, valid_data, saved=False, show_progress=False,
                callback_fn=lambda epoch, score: seen.append((epoch, score, dict(trainer.last_valid_result), trainer.train_seconds)))
    assert [s[0] for s in seen] == [0, 1, 2] and all(s[1] == s[2]["ndcg@10"] for s in seen)  # valid_metric NDCG@10
    assert 0 < seen[0][3] < seen[1][3] < seen[2][3]
    loss = trainer.train_one_epoch(train_data, 3)
    score, result = trainer.validate(valid_data)
    assert loss > 0 and trainer.epochs_run == 4 and score == result["ndcg@10"] == trainer.last_valid_result["ndcg@10"]
