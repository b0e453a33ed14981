"""Hyper-parameter tuning with RecBole's `HyperTuning`, for recbole_bt's models and RecBole's alike.

- `objective_function(config_dict, config_file_list, saved)`: RecBole's objective (same signature, same
  result dict), built on `recbole_bt.quick_start.prepare`, so that it knows recbole_bt's models (BTSRec, ...).
- `run_hyper(model, dataset, params_file, ...)`: RecBole's run_hyper.py as a function: one trial per
  combination of the parameters in `params_file` (RecBole's format, one parameter a line)::

      learning_rate choice [0.001,0.0005]
      alpha uniform 0.0,1.0
      hidden_size quniform 16,64,16
      weight_decay loguniform -10,-2

Needs hyperopt (``pip install recbole-bt[tune]``). Unlike RecBole's objective, ours reports nothing to ray.
"""
import ast
import importlib
import os
from logging import getLogger

from recbole_bt.errors import ConfigError, RecBoleBTError
from recbole_bt.quick_start import prepare
from recbole_bt.registry import get_model

ALGOS = ("exhaustive", "random", "bayes")
# RecBole's parameter types and the number of comma-separated numbers each takes (choice: a Python list).
PARAM_TYPES = {"choice": None, "uniform": 2, "quniform": 3, "loguniform": 2}


def objective_function(config_dict=None, config_file_list=None, saved=True):
    r"""Train and test one configuration; RecBole's `objective_function` for any model `get_model` knows.

    Args:
        config_dict (dict, optional): the trial's parameters, over the config files (``model`` and
            ``dataset`` may be given here or in the files).
        config_file_list (list, optional): the fixed YAML config files.
        saved (bool, optional): whether to save the best model and test it. Defaults to ``True``.

    Returns:
        dict: ``model``, ``best_valid_score``, ``valid_score_bigger``, ``best_valid_result``, ``test_result``.
    """
    config, train_data, valid_data, test_data, trainer = prepare(
        config_file_list=config_file_list, config_dict=config_dict
    )
    stage = getattr(trainer.model, "train_stage", None)
    if stage in ("pretrain", "user_tasks"):  # no validation score to compare trials by
        raise ConfigError(f"cannot tune train_stage {stage}: a trial must train and validate (tune the finetune stage)")
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=config["show_progress"]
    )
    test_result = trainer.evaluate(test_data, load_best_model=saved, show_progress=config["show_progress"])
    getLogger().info(f"trial {config_dict}: best valid {best_valid_result}, test {test_result}")
    return {
        "model": config["model"],
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
    }


def _numbers(value, count, where):
    parts = value.split(",")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = None
    if numbers is None or len(numbers) != count:
        raise ConfigError(f"{where}: expected {count} comma-separated numbers, got '{value}'")
    return numbers


def read_params_file(params_file):
    """The parameters of a RecBole params file as RecBole's `params_dict` ({type: {name: value}}), checked line
    by line: a mistake is a one-line `ConfigError` naming the file and line. Blank and ``#`` lines are skipped."""
    if not os.path.isfile(params_file):
        raise ConfigError(f"params file '{params_file}' not found")
    params, seen = {}, set()
    with open(params_file, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for number, line in enumerate(lines, 1):
        where = f"{params_file}, line {number}"
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        if len(tokens) < 3:
            raise ConfigError(f"{where}: expected 'NAME TYPE VALUES' (e.g. 'learning_rate choice [0.001,0.0005]'), got '{line.strip()}'")
        name, kind, value = tokens[0], tokens[1], "".join(tokens[2:])
        if kind not in PARAM_TYPES:
            raise ConfigError(f"{where}: unknown parameter type '{kind}' (one of: {', '.join(PARAM_TYPES)})")
        if name in seen:
            raise ConfigError(f"{where}: parameter '{name}' given twice")
        seen.add(name)
        if kind == "choice":
            try:
                values = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                values = None
            if not isinstance(values, (list, tuple)) or not values:
                raise ConfigError(f"{where}: choice needs a non-empty Python list such as [0.1,0.5], got '{value}'")
            params.setdefault(kind, {})[name] = list(values)
        else:
            numbers = _numbers(value, PARAM_TYPES[kind], where)
            if numbers[0] >= numbers[1]:
                raise ConfigError(f"{where}: {kind} needs low < high, got '{value}'")
            params.setdefault(kind, {})[name] = numbers
    if not seen:
        raise ConfigError(f"params file '{params_file}' has no parameters")
    return params


def run_hyper(model, dataset, params_file, config_file_list=None, config_dict=None, algo="exhaustive",
              max_evals=100, output_file=None):  # fmt: skip
    r"""Tune `model` on `dataset` over the parameters of `params_file` with RecBole's `HyperTuning`.

    Args:
        model (str): model name, recbole_bt's or RecBole's (``None``: the config files' ``model``).
        dataset (str): dataset name (``None``: the config files' ``dataset``, else ml-100k).
        params_file (str): the parameters to tune, in RecBole's format (see the module docstring).
        config_file_list (list, optional): YAML config files, fixed across trials.
        config_dict (dict, optional): fixed parameters over the files; the tuned ones win over them.
        algo (str): ``exhaustive`` (every combination of ``choice`` parameters), ``random`` or ``bayes`` (TPE).
        max_evals (int): the most trials for ``random`` and ``bayes`` (exhaustive runs every combination).
        output_file (str, optional): where to write every trial's parameters and results (RecBole's format).

    Returns:
        dict: ``best_params`` (the best trial's parameters), ``best_result`` (its objective result) and
        ``params2result`` (every trial's, keyed by RecBole's ``"name:value, ..."`` string).
    """
    if algo not in ALGOS:
        raise ConfigError(f"unknown tuning algo '{algo}' (one of: {', '.join(ALGOS)})")
    if not isinstance(max_evals, int) or max_evals < 1:
        raise ConfigError(f"max_evals must be a positive integer, got {max_evals!r}")
    for file in config_file_list or []:
        if not os.path.isfile(file):
            raise ConfigError(f"config file '{file}' not found")
    params = read_params_file(params_file)
    if algo == "exhaustive" and set(params) != {"choice"}:
        raise ConfigError(
            f"exhaustive search tries every combination of 'choice' parameters, but {params_file} has "
            f"{', '.join(sorted(set(params) - {'choice'}))} ones: use algo random or bayes"
        )
    if model is not None:
        get_model(model)  # an unknown model fails here, in one line, before any trial
    try:
        importlib.import_module("hyperopt")  # RecBole imports it lazily, mid-run: check it up front
    except ImportError as e:
        raise RecBoleBTError(f"tuning needs hyperopt ({e}): pip install 'recbole-bt[tune]'") from None

    from recbole.trainer.hyper_tuning import HyperTuning

    fixed = dict(config_dict or {})
    if model is not None:
        fixed["model"] = model
    if dataset is not None:
        fixed["dataset"] = dataset

    def trial_objective(trial_params, fixed_config_file_list, saved=True):
        return objective_function({**fixed, **trial_params}, fixed_config_file_list, saved)

    hp = HyperTuning(
        trial_objective, params_dict=params, fixed_config_file_list=config_file_list, algo=algo, max_evals=max_evals
    )
    hp.run()
    if output_file:
        hp.export_result(output_file=output_file)
    best = hp.params2str(hp.best_params)
    return {"best_params": hp.best_params, "best_result": hp.params2result[best], "params2result": hp.params2result}
