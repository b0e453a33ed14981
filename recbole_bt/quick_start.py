"""Quick-start functions, as RecBole's `recbole.quick_start`, for recbole_bt's models and RecBole's alike.

- `run_recbole_bt(model, dataset, ...)`: train and test one model; returns RecBole's result dict.
- `run(...)`: the same, in one process or spread over `nproc` processes (RecBole's `run`).
- `load_data_and_model(model_file)`: rebuild config, data and model from a saved checkpoint.
- a run resumes from the checkpoint named by the config key ``resume_file`` (`recbole_bt.resume`).

Multi-process runs (`run(..., nproc=2)`): NCCL with one CUDA GPU per process (RecBole's), or CPU processes on
gloo (``backend: gloo``, the default without CUDA; `recbole_bt.compat`). Training rows are split over the
processes (RecBole's DistributedSampler); every process evaluates all users, so the result is that of a
single-process evaluation (RecBole would split the users and average each metric over processes, wrong for metrics
that are not means over users, e.g. coverage and effective_rank, and biased when users are split unevenly).

Unlike `recbole.quick_start`, importing this module does not import `ray` (RecBole imports it only for
HyperTuning, at a cost of seconds per process).
"""
import sys
import warnings
from logging import getLogger

import torch
import torch.distributed as dist
from recbole.data.transform import construct_transform
from recbole.utils import get_environment, get_flops, init_logger, init_seed, set_color

from recbole_bt.config import Config, UnknownConfigKeyWarning
from recbole_bt.data import data_preparation
from recbole_bt.data.masking import describe_protocol
from recbole_bt.errors import CheckpointError, ConfigError, RecBoleBTError
from recbole_bt.evaluator import results_table
from recbole_bt.evaluator.significance import per_user_record
from recbole_bt.model.pretrain import warm_start
from recbole_bt.checkpoint import read_checkpoint, shape_problems, summarise
from recbole_bt.resume import resume, resume_state_saver
from recbole_bt.data.loading import check_dataset_files, create_dataset
from recbole_bt.registry import get_model, get_trainer
from recbole_bt.tasks import run_user_tasks

def build_config(model=None, dataset=None, config_file_list=None, config_dict=None):
    """`Config(...)` with its unknown-key warnings held back, to be logged once the logger exists."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownConfigKeyWarning)
        return Config(model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict)


def build_model(config, dataset):
    """The model of `config` on the training dataset; a value the model refuses is a one-line `ConfigError`. With
    ``pre_model_path``, a model without a pretraining stage starts from that checkpoint's encoder (`warm_start`)."""
    try:
        model = get_model(config["model"])(config, dataset)
        if config["pre_model_path"] and not hasattr(model, "train_stage"):  # pretraining models load it themselves
            warm_start(model, config["pre_model_path"])
        return model.to(config["device"])
    except RecBoleBTError:
        raise
    except (ValueError, NotImplementedError) as e:
        raise ConfigError(f"cannot build {config['model']}: {e}") from None


def prepare(model=None, dataset=None, config_file_list=None, config_dict=None):
    """Everything a run does before training, logged as RecBole logs it: config, logger, dataset, split,
    model and trainer. Returns ``(config, train_data, valid_data, test_data, trainer)``."""
    config = build_config(model, dataset, config_file_list, config_dict)
    check_dataset_files(config)  # a missing dataset fails here, before pages of logged config
    if config["resume_file"]:
        read_checkpoint(config["resume_file"], "resume_file")  # a missing or foreign file fails before any data loads
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(sys.argv)
    for message in config.unknown_key_warnings:
        logger.warning(message)
    logger.info(config)

    dataset = create_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    if not config["single_spec"]:
        valid_data, test_data = whole_eval_data(config, valid_data), whole_eval_data(config, test_data)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = build_model(config, train_data._dataset)
    logger.info(model)
    rows = train_data._dataset if getattr(dataset, "rows_from_interactions", False) else dataset  # no prefix rows
    flops = get_flops(model, rows, config["device"], logger, construct_transform(config))
    logger.info(set_color("FLOPs", "blue") + f": {flops}")
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    if config["resume_file"]:
        resume(trainer, config["resume_file"], train_data)
    return config, train_data, valid_data, test_data, trainer


def whole_eval_data(config, eval_data):
    """A multi-process run's evaluation dataloader that serves every user to every process (RecBole's splits them
    over the processes, padding with repeated users, and averages each metric over processes)."""
    if eval_data is None:
        return None
    config["single_spec"] = True  # read by RecBole's dataloader only when it is built
    try:
        return type(eval_data)(config, eval_data._dataset, eval_data._sampler, shuffle=False)
    finally:
        config["single_spec"] = False


def run_recbole_bt(model=None, dataset=None, config_file_list=None, config_dict=None, saved=True, queue=None):
    r"""Train a model on a dataset, evaluate it on the test set, and return RecBole's result dict.

    Args:
        model (str, optional): model name, recbole_bt's or RecBole's. Defaults to the config's ``model``.
        dataset (str, optional): dataset name. Defaults to the config's ``dataset``, else ``ml-100k``
            (embedded in RecBole's wheel).
        config_file_list (list, optional): YAML config files, later ones winning.
        config_dict (dict, optional): parameters that override the config files.
        saved (bool, optional): whether to save the best model and test it. Defaults to ``True``.
        queue (torch.multiprocessing.Queue, optional): where rank 0 puts the result in multi-process runs.

    Returns:
        dict: ``best_valid_score``, ``valid_score_bigger``, ``best_valid_result``, ``test_result`` (with
        ``test_per_user: True``, ``test_per_user``: the test users and each one's NDCG@K and HR@K); a pretraining
        run (``train_stage: pretrain``) adds ``pretrain``, a ``train_stage: user_tasks`` run ``user_tasks``
        (`recbole_bt.tasks.run_user_tasks`) and trains nothing.
    """
    config, train_data, valid_data, test_data, trainer = prepare(model, dataset, config_file_list, config_dict)
    logger = getLogger()
    stage = getattr(trainer.model, "train_stage", None)
    if stage == "user_tasks":  # evaluate the (pretrained) encoder on the downstream user tasks, no training
        result = {"best_valid_score": None, "valid_score_bigger": config["valid_metric_bigger"],
                  "best_valid_result": None, "test_result": None,
                  "user_tasks": run_user_tasks(config, trainer.model, valid_data)}  # fmt: skip
        return _finish(config, result, queue)
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=config["show_progress"],
        callback_fn=resume_state_saver(trainer, train_data, saved),
    )  # fmt: skip
    if not config["single_spec"]:  # rank 0 saved the best model: every rank tests that file
        files = [trainer.saved_model_file]
        dist.broadcast_object_list(files, src=0)
        trainer.saved_model_file = files[0]
    if stage == "pretrain":  # RecBole's S3Rec convention: no test yet
        pretrained = trainer.pretrain_result
        logger.info(
            set_color("pretraining done", "yellow") + f": {pretrained}; fine-tune with --train_stage=finetune "
            f"--pre_model_path={pretrained['pretrained_model_file']}"
        )
        result = {"best_valid_score": None, "valid_score_bigger": config["valid_metric_bigger"],
                  "best_valid_result": None, "test_result": None, "pretrain": pretrained}  # fmt: skip
    else:
        trainer.eval_collector.keep_per_user = config["test_per_user"]
        test_result = trainer.evaluate(test_data, load_best_model=saved, show_progress=config["show_progress"])
        trainer.eval_collector.keep_per_user = False
        logger.info("The running environment of this training is as follows:\n" + get_environment(config).draw())
        protocol = describe_protocol(config)
        logger.info(set_color("protocol", "yellow") + f": {protocol}")
        logger.info(set_color("epochs", "yellow") + f": {_epochs_line(trainer)}")
        logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
        logger.info(set_color("test result", "yellow") + f": {test_result}")
        table = results_table({"best valid": best_valid_result, "test": test_result})
        logger.info(set_color("results", "yellow") + f" ({protocol})\n" + table)
        result = {
            "best_valid_score": best_valid_score,
            "valid_score_bigger": config["valid_metric_bigger"],
            "best_valid_result": best_valid_result,
            "test_result": test_result,
            "protocol": protocol,
            "epochs_run": getattr(trainer, "epochs_run", None),
            "best_epoch": getattr(trainer, "best_epoch", None),
        }
        if config["test_per_user"]:  # each test user's NDCG@K and HR@K, for paired tests between runs
            per_user = trainer.eval_collector.per_user  # None without a top-K metric (nothing ranked)
            result["test_per_user"] = per_user_record(per_user, ks=config["topk"]) if per_user else None
    return _finish(config, result, queue)


def _epochs_line(trainer):
    """'38 run, the best validation after the 27th (RecBole's epoch 26)': counts from 1, RecBole's log from 0."""
    run, best = getattr(trainer, "epochs_run", None), getattr(trainer, "best_epoch", None)
    if best is None:
        return f"{run} run, no validation"
    return f"{run} run, the best validation after epoch {best} (RecBole's epoch {best - 1})"


def _finish(config, result, queue):
    if not config["single_spec"]:
        dist.destroy_process_group()
    if config["local_rank"] == 0 and queue is not None:
        queue.put(result)
    return result


def _run_rank(rank, model, dataset, config_file_list, config_dict, saved, queue):
    config_dict = dict(config_dict, local_rank=rank)
    run_recbole_bt(model, dataset, config_file_list, config_dict, saved=saved, queue=queue)


def run(model=None, dataset=None, config_file_list=None, config_dict=None, saved=True, nproc=1,
        world_size=-1, ip="localhost", port="5678", group_offset=0):  # fmt: skip
    """RecBole's `run`: one process, or `nproc` processes of a `world_size`-process job (RecBole's multi-process
    mode: NCCL with a CUDA GPU per process, or CPU processes with ``backend: gloo``). Returns rank 0's result."""
    if nproc == 1 and world_size <= 0:
        return run_recbole_bt(model, dataset, config_file_list, config_dict, saved=saved)
    import torch.multiprocessing as mp

    queue = mp.get_context("spawn").SimpleQueue()
    config_dict = dict(config_dict or {})
    config_dict.update(
        world_size=nproc if world_size == -1 else world_size, ip=ip, port=port, nproc=nproc, offset=group_offset
    )
    args = (model, dataset, config_file_list, config_dict, saved, queue)
    try:
        mp.spawn(_run_rank, args=args, nprocs=nproc, join=True)
    except mp.ProcessRaisedException as e:  # the process's traceback is in the message; its last line says why
        raise RecBoleBTError(f"a process of the {nproc}-process run failed: {str(e).strip().splitlines()[-1]}") from None
    return None if queue.empty() else queue.get()


def load_data_and_model(model_file):
    r"""Load a checkpoint saved by RecBole or recbole_bt, and rebuild what produced it.

    Returns:
        tuple: ``(config, model, dataset, train_data, valid_data, test_data)``, as RecBole's function.
    """
    checkpoint = read_checkpoint(model_file)
    config = checkpoint["config"]
    if not config["single_spec"]:  # saved by rank 0 of a multi-process run: rebuild it in this single process
        config["single_spec"], config["local_rank"] = True, 0
        config["device"] = torch.device(config["device"].type)
    if config["device"].type == "cuda" and not torch.cuda.is_available():
        config["device"] = torch.device("cpu")
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(config)

    dataset = create_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)

    init_seed(config["seed"], config["reproducibility"])
    model = build_model(config, train_data._dataset)
    problems = shape_problems(model.state_dict(), checkpoint["state_dict"])
    if problems:
        raise CheckpointError(
            f"checkpoint '{model_file}' does not fit model {config['model']} built from its own config "
            f"({summarise(problems)})"
        )
    model.load_state_dict(checkpoint["state_dict"])
    model.load_other_parameter(checkpoint.get("other_parameter"))
    return config, model, dataset, train_data, valid_data, test_data
