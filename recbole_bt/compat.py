"""Every fix recbole_bt needs for RecBole 1.2.1 on today's torch / numpy / pandas, each with its reason.

`apply()` runs once, when `recbole_bt` is imported; nothing here has to be imported by the user.
Fixes that are dependency pins rather than code (numpy<2, pandas<3, setuptools<81) live in `setup.py`.
RecBole's multi-process mode hard-codes NCCL and CUDA; `_fix_cpu_multiprocess` adds CPU processes on gloo
(config key `backend`).
The slow `ray` import is avoided, not patched: `recbole_bt.quick_start` never imports `recbole.quick_start`
(the only RecBole module that imports ray at load time).
"""
import functools
import os
import types
import warnings

import torch

_applied = False


def load_checkpoint(path, map_location="cpu"):
    """Load a checkpoint that RecBole or recbole_bt wrote (trusted: the user's own file).

    torch >= 2.6 defaults to `weights_only=True`, which refuses RecBole's checkpoints: they pickle the whole
    `Config` (enums, the model class, a YAML loader) with protocol 4.
    """
    return torch.load(path, map_location=map_location, weights_only=False)


class _TrustedLoadTorch(types.ModuleType):
    """`torch` as RecBole's trainer module sees it: the same module, except that `torch.load` reads the
    trainer's own checkpoints (best model at the end of `fit`, `resume_checkpoint`)."""

    def __init__(self):
        super().__init__("torch")

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    @functools.wraps(torch.load)
    def load(f, *args, **kwargs):
        kwargs.setdefault("weights_only", False)
        return torch.load(f, *args, **kwargs)


class HostInt(int):
    """An int that survives `Collector.get_data_struct`, which calls `.cpu()` on every collected value."""

    def cpu(self):
        return self


def _fix_trainer_checkpoint_reload():
    """torch >= 2.6: RecBole's `Trainer` cannot reload the best checkpoint it has just written
    (`UnpicklingError: Weights only load failed`). Scope the fix to that module, not to torch.load globally."""
    import recbole.trainer.trainer as trainer_module

    if not isinstance(trainer_module.torch, _TrustedLoadTorch):
        trainer_module.torch = _TrustedLoadTorch()


def _fix_anomaly_detection():
    """`recbole/model/sequential_recommender/sine.py` turns on `torch.autograd.set_detect_anomaly(True)` at
    import time, and any Config of a sequential model imports it: every backward pass runs about 2x slower.
    Import it now (a module runs its top level once) and switch anomaly detection back off."""
    import recbole.model.sequential_recommender.sine  # noqa: F401

    torch.autograd.set_detect_anomaly(False)


def _fix_collector_int_cpu():
    """`Collector.get_data_struct` calls `.cpu()` on the ints `data.num_items` / `data.num_users`, so
    ItemCoverage, GiniIndex and any metric that needs them crash with AttributeError. Store them as ints that
    accept `.cpu()`."""
    from recbole.evaluator.collector import Collector

    original = Collector.data_collect
    if getattr(original, "_recbole_bt_fixed", False):
        return

    @functools.wraps(original)
    def data_collect(self, train_data):
        original(self, train_data)
        for key in ("data.num_items", "data.num_users"):
            if key in self.data_struct:
                self.data_struct.set(key, HostInt(self.data_struct.get(key)))

    data_collect._recbole_bt_fixed = True
    Collector.data_collect = data_collect


def _quiet_recbole_deprecations():
    """RecBole 1.2.1 calls APIs that pandas 2 and torch 2 deprecate (chained `fillna(inplace=True)`,
    `Series.agg(len)`, `torch.cuda.amp.GradScaler`): with the pins in setup.py they still work, but every run
    prints the same FutureWarnings. Hide FutureWarnings raised from RecBole's own modules, nothing else."""
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole\.")


def _race_free_ensure_dir(dir_path):
    os.makedirs(dir_path, exist_ok=True)


def _fix_ensure_dir_race():
    """`recbole.utils.ensure_dir` checks `os.path.exists` and then calls `os.makedirs`: two runs started together
    in one folder (a comparison, a benchmark) crash with FileExistsError on `./log`. Every RecBole module imported
    that one function by name, so give the function itself race-free code."""
    from recbole.utils import utils

    utils.ensure_dir.__code__ = _race_free_ensure_dir.__code__


def _fix_numpy_aliases():
    """RecBole's metrics use numpy aliases that numpy 1.24 removed (`np.float` in NDCG); RecBole's `Config` puts
    them back when it is built (`compatibility_settings`). A process that builds none, e.g. one that evaluates a
    checkpoint from `load_data_and_model`, crashes in NDCG: put them back at import."""
    from recbole.config.configurator import Config

    Config.compatibility_settings(None)  # it reads nothing from the instance


class _CParserPandas(types.ModuleType):
    """`pandas` as RecBole's dataset module sees it: the same module, except that `read_csv` uses the C parser
    where RecBole asks for the Python one with a one-character separator (see `_fix_slow_csv_parser`)."""

    def __init__(self, pandas):
        super().__init__("pandas")
        self._pandas = pandas

    def __getattr__(self, name):
        return getattr(self._pandas, name)

    def read_csv(self, *args, **kwargs):
        if kwargs.get("engine") == "python" and len(kwargs.get("delimiter") or kwargs.get("sep") or "") == 1:
            kwargs["engine"] = "c"
        return self._pandas.read_csv(*args, **kwargs)


def _fix_slow_csv_parser():
    """RecBole 1.2.1 reads every atomic file with pandas' Python parser (`engine="python"`): 15 s and a Python
    object per field for ML-1M's million lines, many minutes and gigabytes for ML-20M's 20 million. With its usual
    one-character `field_separator` the C parser reads the same columns into the same dtypes (tests/test_rows.py
    compares the two on ml-100k); RecBole's dataset module gets a pandas whose `read_csv` uses it."""
    from recbole.data.dataset import dataset

    if not isinstance(dataset.pd, _CParserPandas):
        dataset.pd = _CParserPandas(dataset.pd)


BACKENDS = ("nccl", "gloo")


def ddp_backend(config_dict):
    """The torch.distributed backend of a multi-process run: `backend`, else nccl with CUDA and gloo without."""
    backend = config_dict.get("backend") or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend not in BACKENDS:
        from recbole_bt.errors import ConfigError

        raise ConfigError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    return backend


def _fix_cpu_multiprocess():
    """RecBole 1.2.1's multi-process mode (`local_rank` in the config) always joins the process group with NCCL,
    one CUDA device per process: on a machine without GPUs it fails. With `backend: gloo` (the default without
    CUDA) each process runs on the CPU: RecBole sets up the device as for a single process, then the process
    joins a gloo group and is marked as one rank of a multi-process run (``single_spec: False``)."""
    from recbole.config.configurator import Config

    original = Config._init_device
    if getattr(original, "_recbole_bt_fixed", False):
        return

    @functools.wraps(original)
    def _init_device(self):
        final = self.final_config_dict
        if "local_rank" in final and ddp_backend(final) == "nccl" and torch.cuda.device_count() < final["nproc"]:
            from recbole_bt.errors import ConfigError

            raise ConfigError(
                f"backend nccl needs one CUDA GPU per process: nproc={final['nproc']}, "
                f"{torch.cuda.device_count()} visible; use backend: gloo for CPU processes"
            )
        if "local_rank" not in final or ddp_backend(final) == "nccl":
            return original(self)
        rank = final.pop("local_rank")
        original(self)  # gpu_id, CUDA_VISIBLE_DEVICES and the single-process defaults
        import torch.distributed as dist

        dist.init_process_group(
            backend="gloo", rank=rank + final["offset"], world_size=final["world_size"],
            init_method=f"tcp://{final['ip']}:{final['port']}",
        )  # fmt: skip
        final.update(local_rank=rank, single_spec=False, device=torch.device("cpu"))
        if rank != 0:  # RecBole's: only rank 0 logs
            final.update(state="error", show_progress=False, verbose=False)

    _init_device._recbole_bt_fixed = True
    Config._init_device = _init_device


def _fix_cpu_ddp():
    """RecBole's `AbstractTrainer` wraps the model in `DistributedDataParallel(device_ids=[local_rank])` and
    `SyncBatchNorm`, both CUDA-only. On the CPU (gloo) wrap it with no device ids and keep BatchNorm per process
    (SyncBatchNorm refuses CPU tensors)."""
    from torch.nn.parallel import DistributedDataParallel
    from recbole.trainer.trainer import AbstractTrainer

    original = AbstractTrainer.__init__
    if getattr(original, "_recbole_bt_fixed", False):
        return

    @functools.wraps(original)
    def __init__(self, config, model):
        if config["single_spec"] or config["device"].type != "cpu":
            return original(self, config, model)
        self.config, self.model = config, model
        self.distributed_model = DistributedDataParallel(model)

    __init__._recbole_bt_fixed = True
    AbstractTrainer.__init__ = __init__


def apply():
    """Apply every fix, once per process."""
    global _applied
    if _applied:
        return
    _fix_trainer_checkpoint_reload()
    _fix_anomaly_detection()
    _fix_collector_int_cpu()
    _quiet_recbole_deprecations()
    _fix_ensure_dir_race()
    _fix_numpy_aliases()
    _fix_slow_csv_parser()
    _fix_cpu_multiprocess()
    _fix_cpu_ddp()
    _applied = True
