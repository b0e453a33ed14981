"""Find models, trainers and datasets by name: recbole_bt's own first, RecBole's built-ins as the fallback.

- `get_model(name)`: a model registered with `register_model`, then one exported by `recbole_bt.model`,
  then RecBole's `recbole.utils.get_model`. An unknown name is a `ModelNotFoundError` with the close matches.
- `get_trainer(model_type, model_name)`: the model's own `trainer_class` attribute (a class, or the name of one
  in `recbole_bt.trainer` or `recbole.trainer`), then `recbole_bt.trainer.<Model>Trainer`, then RecBole's choice;
  a RecBole trainer gets recbole_bt's evaluation in front (`recbole_bt.trainer.with_evaluation`).
- `create_dataset(config)`: recbole_bt's SequentialDataset (with `train_mode`) for sequential models, else
  RecBole's `create_dataset`, after checking that the atomic files exist (or can be
  downloaded), so that a missing dataset is a `DatasetNotFoundError` naming the folder and files looked for,
  and that data the run cannot use is a one-line `DegenerateDataError` before RecBole fails deep inside (see
  `check_dataset_contents`; `topk_error` for an evaluation that cuts at more items than the catalog has).
"""
import difflib
import importlib
import inspect
import os
import shutil
from logging import getLogger

from recbole.model.abstract_recommender import AbstractRecommender

from recbole_bt.data.memory import check_before_loading
from recbole_bt.data.rows import part_sizes
from recbole_bt.errors import ConfigError, DatasetNotFoundError, DegenerateDataError, ModelNotFoundError

_RECBOLE_MODEL_SUBMODULES = [
    "general_recommender",
    "context_aware_recommender",
    "sequential_recommender",
    "knowledge_aware_recommender",
    "exlib_recommender",
]

_registered_models = {}


def register_model(model_class, name=None):
    """Make a model class findable by name (e.g. a user's own model). Registered names shadow every other."""
    if not (inspect.isclass(model_class) and issubclass(model_class, AbstractRecommender)):
        raise TypeError(f"register_model expects a RecBole model class, got {model_class!r}")
    _registered_models[name or model_class.__name__] = model_class
    return model_class


def unregister_model(name):
    """Forget a name given to `register_model` (no error if it was not registered)."""
    _registered_models.pop(name, None)


def _model_classes_in(module):
    return {
        name: obj
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, AbstractRecommender) and not name.startswith("_")
    }


def package_models():
    """{name: class} of recbole_bt's own models (registered ones included)."""
    models = _model_classes_in(importlib.import_module("recbole_bt.model"))
    models.update(_registered_models)
    return models


def recbole_model_names():
    """Names of RecBole's built-in models."""
    names = set()
    for submodule in _RECBOLE_MODEL_SUBMODULES:
        try:
            module = importlib.import_module(f"recbole.model.{submodule}")
        except ImportError:  # an optional dependency of that family is missing
            continue
        names.update(
            name
            for name, cls in _model_classes_in(module).items()
            if cls.__module__.startswith(f"recbole.model.{submodule}.")
        )
    return sorted(names)


def model_names():
    """Every model name `get_model` accepts: recbole_bt's first, then RecBole's."""
    ours = sorted(package_models())
    return ours + [name for name in recbole_model_names() if name not in ours]


def get_model(model_name):
    """Return the model class called `model_name`, looking in recbole_bt first and RecBole second."""
    if not isinstance(model_name, str):
        raise ModelNotFoundError(f"a model name must be a string, got {model_name!r}")
    ours = package_models()
    if model_name in ours:
        return ours[model_name]
    if model_name in recbole_model_names():
        from recbole.utils import get_model as recbole_get_model

        return recbole_get_model(model_name)
    raise ModelNotFoundError(_unknown_model_message(model_name))


def _unknown_model_message(model_name):
    names = model_names()
    lowered = {name.lower(): name for name in names}
    close = difflib.get_close_matches(model_name, names, n=5, cutoff=0.6)
    if model_name.lower() in lowered and lowered[model_name.lower()] not in close:
        close.insert(0, lowered[model_name.lower()])
    hint = f"did you mean {', '.join(close)}? " if close else ""
    ours = sorted(package_models())
    return (
        f"unknown model '{model_name}': {hint}"
        f"recbole_bt models: {', '.join(ours) if ours else '(none)'}; "
        f"plus RecBole's {len(names) - len(ours)} built-ins (recbole_bt.registry.model_names() lists all)"
    )


def _trainer_by_name(name):
    for module_name in ("recbole_bt.trainer", "recbole.trainer"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            continue
        if hasattr(module, name):
            return getattr(module, name)
    return None


def get_trainer(model_type, model_name):
    """Return the trainer class for a model: its own `trainer_class`, ours by name, or RecBole's default;
    RecBole trainers come with recbole_bt's evaluation (`recbole_bt.trainer.with_evaluation`)."""
    from recbole_bt.trainer import with_evaluation

    return with_evaluation(_find_trainer(model_type, model_name))


def _find_trainer(model_type, model_name):
    model_class = get_model(model_name)
    wanted = getattr(model_class, "trainer_class", None)
    if inspect.isclass(wanted):
        return wanted
    if isinstance(wanted, str):
        trainer = _trainer_by_name(wanted)
        if trainer is None:
            raise ModelNotFoundError(
                f"model '{model_name}' names trainer_class '{wanted}', which is neither in "
                f"recbole_bt.trainer nor in recbole.trainer"
            )
        return trainer
    own = importlib.import_module("recbole_bt.trainer")
    if hasattr(own, model_name + "Trainer"):
        return getattr(own, model_name + "Trainer")
    from recbole.utils import get_trainer as recbole_get_trainer

    return recbole_get_trainer(model_type, model_name)


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

    from recbole_bt.data.dataset import SequentialDataset

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
        return check_dataset_contents(config, _check_time_field(config, _build_dataset(config)))
    getLogger().info(f"dataset [{config['dataset']}] is not on disk: downloading it from [{url}]")
    try:
        dataset = _check_time_field(config, _build_dataset(config))
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


def _check_time_field(config, dataset):
    """Sequential datasets sort each user's history by TIME_FIELD; without it RecBole fails deep in `build`."""
    from recbole.utils import ModelType

    if config["MODEL_TYPE"] == ModelType.SEQUENTIAL and dataset.time_field not in dataset.field2type:
        loaded = list(dataset.inter_feat.columns)
        raise ConfigError(
            f"sequential model {config['model']} orders each user's history by TIME_FIELD "
            f"'{dataset.time_field}', which is not among the loaded columns {loaded} of {config['dataset']}.inter: "
            f"add it to load_col, e.g. load_col: {{inter: [user_id, item_id, {dataset.time_field}]}}"
        )
    return dataset


# ----------------------------------------------------------------------------------------- degenerate data
_PART_NAMES = ("training", "validation", "test")


def check_dataset_contents(config, dataset):
    """Raise `DegenerateDataError` for data that RecBole would fail on deep inside (an IndexError while building
    the training rows) or silently misuse (no validation, hence no model selection): no training rows, a catalog
    of fewer than 2 items, an empty validation or test set under RecBole's LS or RS split. A catalog smaller than
    the largest ``topk`` is logged as a warning (building the data is fine; `topk_error` is for evaluation).
    Returns the dataset."""
    _check_rows(config, dataset)
    n_items = dataset.item_num - 1  # id 0 is padding
    if n_items < 2:
        raise DegenerateDataError(
            f"the catalog of {config['dataset']} has {n_items} item(s): a recommender needs at least 2 items to rank"
        )
    error = topk_error(config, n_items)
    if error is not None:
        getLogger().warning(f"{error}: evaluation will fail")
    _check_split(config, dataset)
    return dataset


def topk_error(config, n_items):
    """A `DegenerateDataError` if a ranking evaluation of `config` cuts at more than the `n_items` items of the
    catalog (torch.topk would fail with 'selected index k out of range'), else None."""
    from recbole.utils import EvaluatorType

    topk = config["topk"] if isinstance(config["topk"], list) else [config["topk"]]
    if config["eval_type"] != EvaluatorType.RANKING or not topk or max(topk) <= n_items:
        return None
    return DegenerateDataError(
        f"the catalog of {config['dataset']} has {n_items} items, fewer than the cut-off topk {max(topk)}: use "
        f"topk values <= {n_items} (e.g. topk: [1, {n_items}], valid_metric: NDCG@{n_items})"
    )


def _rows_per_user(config, dataset):
    """Rows that each user's history gives the split: its interactions, one fewer for a sequential model
    ((prefix, target) pairs, which RecBole's `build` makes). Returns (rows of each user [U], 1 or 0 fewer)."""
    import numpy as np
    from recbole.utils import ModelType

    counts = np.bincount(np.asarray(dataset.inter_feat[dataset.uid_field]).astype(np.int64))
    offset = 1 if config["MODEL_TYPE"] == ModelType.SEQUENTIAL else 0
    return counts[counts > 0] - offset, offset


def _check_rows(config, dataset):
    rows, offset = _rows_per_user(config, dataset)
    if rows.sum() > 0:
        return
    if offset:
        raise DegenerateDataError(
            f"no training rows for sequential model {config['model']}: no user of {config['dataset']} has 2 or more "
            f"interactions (after filtering), and a (history, next item) row needs 2; leave-one-out validation and "
            f"test need 4 per user"
        )
    raise DegenerateDataError(f"no interactions left in {config['dataset']} after filtering: nothing to train on")


def _part_sizes(config, dataset):
    """(split, group_by, wanted, sizes) of `rows.part_sizes` for the config's split; None for a split it cannot
    tell, and for benchmark files."""
    eval_args = config["eval_args"] or {}
    split, group_by = eval_args.get("split"), str(eval_args.get("group_by")).lower()
    known = None if config["benchmark_filename"] else part_sizes(dataset, split, group_by)
    return None if known is None else (split, group_by, *known)


def _check_split(config, dataset):
    """An empty validation or test set: RecBole would skip validation silently (the last epoch is tested, no early
    stopping) or fail when it reports the test result."""
    import numpy as np

    known = _part_sizes(config, dataset)
    if known is None:
        return
    split, group_by, wanted, sizes = known
    rows, offset = _rows_per_user(config, dataset)
    rows = rows[rows > 0]
    groups = [int(rows.sum())] if group_by == "none" else rows
    lengths, counts = np.unique(groups, return_counts=True)
    totals = sum(np.array(sizes(int(r))) * c for r, c in zip(lengths, counts))
    for part in (0, 1, 2):
        if not wanted[part] or totals[part] > 0 or (part == 1 and not config["eval_step"]):
            continue
        raise DegenerateDataError(_empty_part_message(config, split, group_by, part, sizes, int(lengths.max()), offset))


def _empty_part_message(config, split, group_by, part, sizes, longest, offset):
    name = _PART_NAMES[part]
    without = ", or eval_args split {LS: test_only} or eval_step: 0 to train without validation" if part == 1 else ""
    if group_by == "none":
        return f"the {name} set of {config['dataset']} is empty: the split {split} of all {longest} rows gives none"
    needed = next((r + offset for r in range(1, 1001) if sizes(r)[part] > 0), "more")
    return (
        f"the {name} set of {config['dataset']} is empty: under the split {split} a user history gives a {name} row "
        f"from {needed} interactions on, and the longest here has {longest + offset}; use longer histories{without}"
    )
