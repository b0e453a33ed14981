"""recbole_bt's Config: RecBole's, with the package's properties layered in and user mistakes made clear.

Precedence, lowest first (RecBole's, with our YAML slotted in as package defaults):
    RecBole's defaults (overall.yaml, model/<Model>.yaml, the model-type quick-start YAML)
    < recbole_bt's properties/overall.yaml < properties/model/<Model>.yaml
    < dataset YAML (RecBole's properties/dataset/<dataset>.yaml, then ours)
    < the user's config files (in the order given) < config_dict < command line (--key=value).

On top of RecBole's Config:
- the dataset defaults to ml-100k, which RecBole's wheel ships (RecBole's run_recbole.py default);
- models are found with `recbole_bt.registry.get_model` (ours first, then RecBole's);
- a config file that is missing, does not parse or is not a mapping is a one-line `ConfigError` (file, line),
  and so is any error RecBole's Config raises on the user's values;
- a key that no model, dataset or RecBole default declares is reported (RecBole would silently read None),
  with the closest known key: `Config.unknown_key_warnings`, also emitted as `UnknownConfigKeyWarning`; so is a
  key that only other models' YAML declares, which the run's model does not read (`lmd` given to BTSRec), with the
  models that read it (`UnusedConfigKeyWarning`);
- every key of `recbole_bt.config_ranges.NUMERIC_KEYS` (numbers, choices, lists: RecBole's overall keys, the
  SASRec family's, each recbole_bt model's; `loss_type` from the model's `loss_types`) is checked against its
  range before any data is loaded (models read their options unchecked): a value of the wrong type,
  NaN, infinite or out of range is a one-line `ConfigError` naming the key, the value and the range.
"""
import ast
import difflib
import functools
import os
import warnings

import yaml
from recbole.config import Config as RecBoleConfig
from recbole.evaluator import metric_types
from recbole.utils import EvaluatorType, InputType, ModelType, dataset_arguments, evaluation_arguments, general_arguments, training_arguments

from recbole_bt.data.dataset import TRAIN_MODES
from recbole_bt.config_ranges import numeric_ranges, resolve_train_mode_defaults
from recbole_bt.errors import ConfigError, RecBoleBTError
from recbole_bt.registry import get_model, model_names

DEFAULT_DATASET = "ml-100k"  # shipped inside RecBole's wheel: a run needs no data at hand
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

# Keys that the run scripts and RecBole's Config itself put into a config (not declared in any YAML).
_RUN_KEYS = {
    "model", "dataset", "config_files", "nproc", "world_size", "ip", "port", "offset", "group_offset",
    "local_rank", "single_spec", "device", "MODEL_TYPE", "MODEL_INPUT_TYPE", "eval_type",
    "valid_neg_sample_args", "test_neg_sample_args",
}  # fmt: skip
# Keys that RecBole 1.2.1's code reads although none of its YAML files declares them (field names some models
# read from the config, and a few model options); tests/test_config.py checks this list against RecBole's source,
# and that every key recbole_bt's code reads is declared in its YAML files.
RECBOLE_UNDECLARED_KEYS = {
    "CROP_ITEM_SEQ", "CROP_ITEM_SEQ_LEN", "INVERSE_ITEM_SEQ", "MASK_INDEX", "MASK_ITEM_SEQ", "NEG_ITEMS",
    "POS_ITEMS", "REORDER_ITEM_SEQ", "cin", "encoding", "eta", "feature_num", "has_residual", "norm",
    "tail_ratio", "token_num_threshold", "use_filter", "xgb_early_stopping_rounds",
}  # fmt: skip


IN_MODEL_NEGATIVES_LOSSES = ("CE", "BCE", "SCE")  # losses for which the dataloader must not sample negatives
ADAM_LEARNERS = ("adam", "adamw", "sparse_adam")  # RecBole's learners that take betas (adam_betas)
_EVALUATION_KEYS = {"metrics", "topk", "valid_metric", "eval_args"}


def _literal(text):
    """The Python literal `text` spells (number, list, dict, tuple, None, True/true...), else `text` itself."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return {"true": True, "false": False}.get(text.lower(), text)
    return value if value is None or isinstance(value, (str, int, float, list, tuple, dict, bool)) else text


def _all_ranking_metrics(metrics):
    if isinstance(metrics, str):
        metrics = [metrics]
    return all(metric_types.get(str(m).lower()) == EvaluatorType.RANKING for m in metrics or [])


class UnknownConfigKeyWarning(UserWarning):
    """A config key that nothing in RecBole or recbole_bt reads."""


class UnusedConfigKeyWarning(UnknownConfigKeyWarning):
    """A config key that other models read, but not the run's model."""


def properties_dir():
    """recbole_bt's YAML defaults: `recbole_bt/properties` once installed, `properties/` in a source checkout."""
    for candidate in (os.path.join(PACKAGE_DIR, "properties"), os.path.join(os.path.dirname(PACKAGE_DIR), "properties")):
        if os.path.isfile(os.path.join(candidate, "overall.yaml")):
            return candidate
    raise RuntimeError(f"recbole_bt's properties/ folder is missing next to {PACKAGE_DIR}: reinstall the package")


def recbole_properties_dir():
    import recbole

    return os.path.join(os.path.dirname(os.path.abspath(recbole.__file__)), "properties")


def resolve_config_file(path):
    """`path`, or, when no such file exists, the package's file of that name under its properties folder: the
    protocol presets are `--config_files=protocol/<name>.yaml` from anywhere."""
    if os.path.isfile(path) or os.path.isabs(path):
        return path
    packaged = os.path.join(properties_dir(), path)
    return packaged if os.path.isfile(packaged) else path


def read_yaml_file(path, loader=yaml.FullLoader):
    """Read a YAML config file into a dict; every way it can be wrong is a one-line `ConfigError`."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            content = yaml.load(f.read(), Loader=loader)
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' not found") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        context, context_mark = getattr(e, "context", None), getattr(e, "context_mark", None)
        if context and context_mark is not None and context_mark is not mark:
            problem += f" ({context} at line {context_mark.line + 1}, column {context_mark.column + 1})"
        raise ConfigError(f"config file '{path}' is not valid YAML{where}: {problem}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(
            f"config file '{path}' must be a mapping of 'key: value' lines, not a {type(content).__name__}"
        )
    return content


def _yaml_keys(folder, skip=()):
    keys = set()
    for root, _, files in os.walk(folder):
        for name in files:
            if name.endswith(".yaml") and name not in skip:
                keys.update(read_yaml_file(os.path.join(root, name)))
    return keys


@functools.lru_cache(maxsize=None)
def package_config_keys():
    """Every key recbole_bt's own YAML files declare (properties/: overall, models, datasets, protocols)."""
    return frozenset(_yaml_keys(properties_dir()))


@functools.lru_cache(maxsize=None)
def known_config_keys():
    """Every key some model, dataset or default of RecBole or recbole_bt declares in YAML (and the few that RecBole
    reads undeclared)."""
    keys = set(_RUN_KEYS) | RECBOLE_UNDECLARED_KEYS
    keys.update(general_arguments + training_arguments + evaluation_arguments + dataset_arguments)
    keys.update(_yaml_keys(recbole_properties_dir(), skip=("url.yaml", "kg_url.yaml")))
    keys.update(package_config_keys())
    return frozenset(keys)


@functools.lru_cache(maxsize=None)
def model_only_keys():
    """Keys that only model YAML files declare (RecBole's and recbole_bt's properties/model/): not a default, dataset
    or protocol file, not a key RecBole reads for every model, not `pre_model_path` / `train_stage` (any model
    warm-starts from a checkpoint, `recbole_bt.quick_start.build_model`). A model reads such a key only when a
    YAML file of its own or of a base class declares it."""
    general, declared = set(_RUN_KEYS) | RECBOLE_UNDECLARED_KEYS | {"pre_model_path", "train_stage"}, set()
    general.update(general_arguments + training_arguments + evaluation_arguments + dataset_arguments)
    for folder in (recbole_properties_dir(), properties_dir()):
        for root, _, files in os.walk(folder):
            for name in files:
                if name.endswith(".yaml") and name not in ("url.yaml", "kg_url.yaml"):
                    keys = read_yaml_file(os.path.join(root, name)) or {}
                    (declared if os.path.basename(root) == "model" else general).update(keys)
    return frozenset(declared - general)


def _model_yaml_keys(model_class):
    """The keys the YAML files of `model_class` declare: its base classes' and its own, RecBole's and ours."""
    name = f"{model_class.__name__}.yaml"
    own = [os.path.join(folder, "model", name) for folder in (recbole_properties_dir(), properties_dir())]
    files = _parent_model_files(model_class) + own
    return set().union(*(read_yaml_file(f) or {} for f in files if os.path.isfile(f)))


def models_reading(key):
    """The models (recbole_bt's and RecBole's) whose YAML files declare `key`."""
    names = []
    for name in model_names():
        try:
            model_class = get_model(name)
        except Exception:  # noqa: BLE001 - a RecBole model whose optional dependency is missing
            continue
        if key in _model_yaml_keys(model_class):
            names.append(name)
    return names


def _parent_model_files(model_class):
    """Model YAML of the model's base classes, most basic first (RecBole's, then ours, per class): a model that
    subclasses SASRec inherits SASRec's defaults and overrides them in its own YAML."""
    files = []
    for cls in reversed(getattr(model_class, "__mro__", ())[1:]):
        for folder in (recbole_properties_dir(), properties_dir()):
            file = os.path.join(folder, "model", f"{cls.__name__}.yaml")
            if os.path.isfile(file) and file not in files:
                files.append(file)
    return files


class Config(RecBoleConfig):
    """RecBole's `Config` for recbole_bt: same arguments, same behaviour, plus the package's defaults."""

    def __init__(self, model=None, dataset=None, config_file_list=None, config_dict=None):
        try:
            super().__init__(model, dataset, config_file_list, config_dict)
        except RecBoleBTError:
            raise
        except (ValueError, TypeError, KeyError, NotImplementedError, SyntaxError, RuntimeError) as e:
            # RecBole's own checks (metric names, eval_args, loss_type vs negatives...): user input, one line
            message = e.args[0] if isinstance(e, KeyError) and e.args else e
            raise ConfigError(f"invalid configuration: {message}") from None
        self.unknown_key_warnings = self._find_unknown_keys()
        for message in self.unknown_key_warnings:
            warnings.warn(message, UnknownConfigKeyWarning, stacklevel=2)
        unused = self._find_unused_keys()
        for message in unused:
            warnings.warn(message, UnusedConfigKeyWarning, stacklevel=2)
        self.unknown_key_warnings += unused

    def _convert_config_dict(self, config_dict):
        """String values (command line, config_dict) to Python values as RecBole converts them, with
        `ast.literal_eval` in place of its `eval`: '0/0' or '9**9**9' stay strings (which the key's check then
        refuses) instead of raising ZeroDivisionError or hanging, and no value runs code."""
        for key, value in config_dict.items():
            if isinstance(value, str):
                config_dict[key] = _literal(value)
        return config_dict

    def _load_config_files(self, file_list):
        file_config_dict = {}
        for file in file_list or []:
            file_config_dict.update(read_yaml_file(resolve_config_file(file), self.yaml_loader))
        return file_config_dict

    def _get_model_and_dataset(self, model, dataset):
        model = model if model is not None else self.external_config_dict.get("model")
        if model is None:
            raise ConfigError("no model given: pass --model=NAME (or 'model: NAME' in a config file)")
        if isinstance(model, str):
            model_class = get_model(model)
        else:
            model_class, model = model, model.__name__
        dataset = dataset if dataset is not None else self.external_config_dict.get("dataset")
        if dataset is None:
            dataset = DEFAULT_DATASET
        return model, model_class, dataset

    def _load_internal_config_dict(self, model, model_class, dataset):
        super()._load_internal_config_dict(model, model_class, dataset)
        ours = properties_dir()
        overall = read_yaml_file(os.path.join(ours, "overall.yaml"), self.yaml_loader)
        if not _all_ranking_metrics(self.internal_config_dict.get("metrics")):
            overall = {k: v for k, v in overall.items() if k not in _EVALUATION_KEYS}
        self.internal_config_dict.update(overall)
        layers = [(file, False) for file in _parent_model_files(model_class)] + [
            (os.path.join(ours, "model", f"{model}.yaml"), False),
            # Dataset YAML ranks above package YAML: RecBole's is applied again after ours, then our own.
            (os.path.join(recbole_properties_dir(), "dataset", f"{dataset}.yaml"), True),
            (os.path.join(ours, "dataset", f"{dataset}.yaml"), True),
        ]
        for file, is_dataset_file in layers:
            if os.path.isfile(file):
                config_dict = read_yaml_file(file, self.yaml_loader)
                self.internal_config_dict.update(config_dict)
                if is_dataset_file:
                    self.parameters["Dataset"] += [k for k in config_dict if k not in self.parameters["Dataset"]]
        self._no_dataloader_negatives()

    def _no_dataloader_negatives(self):
        """RecBole 1.2.1 refuses a sequential model with `loss_type: CE` unless `train_neg_sample_args` is None,
        but its own overall.yaml sets uniform negatives, so `--model=SASRec` fails out of the box. CE samples no
        negatives, and BCE / SCE find them inside the model: default the key to None unless the user set it."""
        loss_type = self.external_config_dict.get("loss_type", self.internal_config_dict.get("loss_type"))
        if (
            self.internal_config_dict["MODEL_TYPE"] == ModelType.SEQUENTIAL
            and loss_type in IN_MODEL_NEGATIVES_LOSSES
            and "train_neg_sample_args" not in self.external_config_dict
        ):
            self.internal_config_dict["train_neg_sample_args"] = None

    def _set_default_parameters(self):
        super()._set_default_parameters()
        final = self.final_config_dict
        if final.get("MODEL_INPUT_TYPE") is None and final.get("loss_type") in IN_MODEL_NEGATIVES_LOSSES:
            final["MODEL_INPUT_TYPE"] = InputType.POINTWISE  # RecBole derives it for CE and BPR only
        self._check_model_options()

    def _check_numeric_options(self):
        """Every numeric key of `NUMERIC_KEYS` that applies to the model, in its range; n_heads divides hidden_size."""
        final = self.final_config_dict
        ranges = numeric_ranges(self.model_class)
        for key, allowed in ranges.items():
            if key in final:
                final[key] = allowed.check(key, final[key])
        heads, hidden = final.get("n_heads"), final.get("hidden_size")
        if "n_heads" in ranges and isinstance(heads, int) and isinstance(hidden, int) and hidden % heads:
            raise ConfigError(
                f"'n_heads' must divide hidden_size={hidden} (each head takes hidden_size / n_heads), got {heads}"
            )

    def _check_model_options(self):
        """Options of recbole_bt's models, checked before any data is loaded."""
        final = self.final_config_dict
        mode, stride = final.get("train_mode") or "prefix", final.get("train_stride")
        if mode not in TRAIN_MODES:
            raise ConfigError(f"'train_mode' must be one of {list(TRAIN_MODES)}, got {mode!r}")
        final["train_mode"] = mode
        resolve_train_mode_defaults(final)  # ~ = the train mode's default, before the ranges are checked
        self._check_numeric_options()
        if final.get("train_stage") == "pretrain" and "pretrain" in getattr(self.model_class, "train_stages", ()):
            if final["train_batch_size"] < 2:
                raise ConfigError(
                    f"'train_batch_size' must be at least 2 in train_stage pretrain (the heads use BatchNorm over the "
                    f"batch), got {final['train_batch_size']}"
                )
        if mode == "all_positions" and not getattr(self.model_class, "supports_all_positions", False):
            raise ConfigError(
                f"train_mode all_positions needs a model that takes its loss at every position (recbole_bt's "
                f"SASRec family); {self.model} trains on RecBole's prefix rows: use train_mode: prefix"
            )
        learner = str(final.get("learner") or "adam").lower()
        if final.get("adam_betas") is not None and learner not in ADAM_LEARNERS:
            raise ConfigError(f"adam_betas applies to learner {' / '.join(ADAM_LEARNERS)}, not {final.get('learner')!r}")
        max_len = final.get("MAX_ITEM_LIST_LENGTH")
        if stride is not None and (
            isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride <= (max_len or stride)
        ):
            raise ConfigError(f"'train_stride' must be an integer in [1, MAX_ITEM_LIST_LENGTH={max_len}], got {stride!r}")
        split = (final.get("eval_args") or {}).get("split")
        if isinstance(split, dict) and "GTS" in split and final.get("MODEL_TYPE") != ModelType.SEQUENTIAL:
            raise ConfigError(
                f"eval_args split GTS (BT-SR's global temporal split) builds sequential (history, target) rows; "
                f"{self.model} is not a sequential model: use one of RecBole's splits (RS, LS, TS)"
            )
        if final.get("train_stage") == "user_tasks" and "user_tasks" not in getattr(self.model_class, "train_stages", ()):
            raise ConfigError(
                f"train_stage user_tasks evaluates a pretrained encoder of CLUE, BTPretrain or DualEncoder; "
                f"{self.model} has no such stage"
            )
        self._check_valid_metric()

    def _check_valid_metric(self):
        """RecBole looks `valid_metric` up in the validation result after the first epoch: one that is not
        computed fails there with a KeyError, after an epoch of training. Check it now."""
        final = self.final_config_dict
        valid_metric, metrics = str(final.get("valid_metric") or ""), final.get("metrics") or []
        metrics = [metrics] if isinstance(metrics, str) else metrics
        name, _, k = valid_metric.lower().partition("@")
        topk = final.get("topk")
        topk = [topk] if isinstance(topk, int) else list(topk or [])
        if name not in [str(m).lower() for m in metrics]:
            raise ConfigError(
                f"valid_metric '{valid_metric}' is not computed: metrics are {metrics}; add "
                f"'{name}' to metrics or choose valid_metric among them (e.g. {metrics[0] if metrics else 'NDCG'}@10)"
            )
        if k and (not k.isdigit() or int(k) not in topk):
            raise ConfigError(f"valid_metric '{valid_metric}': the cut-off {k} is not in topk {topk}")

    def _find_unknown_keys(self):
        known = known_config_keys() | set(self.internal_config_dict)
        messages = []
        for key in self.external_config_dict:
            if key in known:
                continue
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            messages.append(
                f"unknown config key '{key}': no model, dataset or RecBole default uses it "
                f"(RecBole would read it as None){hint}"
            )
        return messages

    def _find_unused_keys(self):
        """Keys given for the run that only other models' YAML declares: the run's model never reads them. Not
        checked for a model from outside RecBole and recbole_bt (`register_model`): its keys are its own."""
        if not self.model_class.__module__.startswith(("recbole.", "recbole_bt.")):
            return []
        messages = []
        for key in self.external_config_dict:
            if key in model_only_keys() and key not in self.internal_config_dict:
                readers = models_reading(key)
                shown = ", ".join(readers[:6]) + (f" and {len(readers) - 6} more" if len(readers) > 6 else "")
                messages.append(
                    f"config key '{key}' has no effect on {self.model}: only other models read it ({shown})"
                )
        return messages
