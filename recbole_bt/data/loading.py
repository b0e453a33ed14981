"""Loading a dataset by name (`create_dataset`): recbole_bt's SequentialDataset (with `train_mode`) for sequential
models, RecBole's `create_dataset` otherwise, after checking that the atomic files exist or can be downloaded (a
missing dataset is a `DatasetNotFoundError` naming the folder and files looked for) and that they fit in memory
(`memory.check_before_loading`); the loaded data then goes through `checks.check_dataset_contents`.
"""
import importlib
import os
import shutil
from logging import getLogger

from recbole_bt.data.checks import check_dataset_contents, check_time_field
from recbole_bt.data.dataset import SequentialDataset
from recbole_bt.data.memory import check_before_loading
from recbole_bt.errors import DatasetNotFoundError


def _downloadable(dataset_name):
    """The URL RecBole would download `dataset_name` from, or None if it is not one of RecBole's datasets."""
    import recbole
    import yaml

    url_file = os.path.join(os.path.dirname(recbole.__file__), "properties", "dataset", "url.yaml")
    with open(url_file, encoding="utf-8") as f:
        return (yaml.safe_load(f) or {}).get(dataset_name)


def _inter_files(config):
    token, path = config["dataset"], config["data_path"]
    if config["benchmark_filename"]:
        return [os.path.join(path, f"{token}.{part}.inter") for part in config["benchmark_filename"]]
    return [os.path.join(path, f"{token}.inter")]


def check_dataset_files(config):
    """Raise `DatasetNotFoundError` if the dataset's `.inter` file(s) are missing and RecBole cannot download
    them. Returns the download URL when RecBole is about to download, else None."""
    token, path = config["dataset"], os.path.abspath(config["data_path"])
    missing = [f for f in _inter_files(config) if not os.path.isfile(f)]
    if not missing:
        return None
    url = _downloadable(token)
    if url is not None and (not os.path.exists(path) or not os.listdir(path)):
        if os.path.isdir(path):  # an empty folder left by an interrupted download would stop RecBole retrying
            shutil.rmtree(path)
        return url
    raise DatasetNotFoundError(
        _missing_dataset_message(token, path, missing, "it is not a dataset RecBole can download")
    )


def _missing_dataset_message(token, path, missing, why):
    return (
        f"dataset '{token}' not found: RecBole looked for {', '.join(os.path.abspath(f) for f in missing)} "
        f"(atomic files {token}.inter and optionally {token}.user / {token}.item in folder {path}) and {why}; "
        f"put the atomic files there, or pass --data_path=DIR where DIR/{token}/{token}.inter exists"
    )


def _build_dataset(config):
    """recbole_bt's SequentialDataset (train_mode) for sequential models that RecBole gives no dataset class of
    their own; RecBole's `create_dataset` otherwise, and for a dataset saved with `save_dataset`."""
    from recbole.data import create_dataset as recbole_create_dataset
    from recbole.utils import ModelType

    own_class = hasattr(importlib.import_module("recbole.data.dataset"), config["model"] + "Dataset")
    saved = config["dataset_save_path"] and os.path.exists(config["dataset_save_path"])
    if config["MODEL_TYPE"] != ModelType.SEQUENTIAL or own_class or saved:
        return recbole_create_dataset(config)
    dataset = SequentialDataset(config)
    if config["save_dataset"]:
        dataset.save()
    return dataset


def create_dataset(config):
    """Create the dataset, with a clear `DatasetNotFoundError` for a dataset not on disk and a `DegenerateDataError`
    for one the run cannot use (`check_dataset_contents`)."""
    url = check_dataset_files(config)
    if url is None:
        check_before_loading(config, _inter_files(config))
        return check_dataset_contents(config, check_time_field(config, _build_dataset(config)))
    getLogger().info(f"dataset [{config['dataset']}] is not on disk: downloading it from [{url}]")
    try:
        dataset = check_time_field(config, _build_dataset(config))
    except OSError as e:  # URLError, socket and HTTP errors are OSErrors
        path = os.path.abspath(config["data_path"])
        if os.path.isdir(path) and not os.listdir(path):
            shutil.rmtree(path)
        reason = getattr(e, "reason", None) or e
        raise DatasetNotFoundError(
            _missing_dataset_message(
                config["dataset"], path, _inter_files(config), f"downloading it from {url} failed ({reason})"
            )
        ) from None
    return check_dataset_contents(config, dataset)
