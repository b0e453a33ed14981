"""Multi-process runs on the CPU (2 processes, gloo): BTSRec end to end, the global-batch Barlow Twins loss and its
gradient through RecBole's DDP training step, and an evaluation equal to the single-process one."""
import glob
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from recbole.data.interaction import Interaction

from conftest import TINY_YAML, tiny_config
from recbole_bt import ConfigError
from recbole_bt.loss import barlow_twins_loss
from recbole_bt.model import BTSRec
from recbole_bt.quick_start import build_config, load_data_and_model, prepare, run
from recbole_bt.registry import get_trainer

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="torch.distributed with gloo is not available"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _encoder():
    torch.manual_seed(0)
    return torch.nn.Linear(5, 4).double()


def _recbole_ddp_step(rank, world, port, x_a, x_b, out):
    """One training step as RecBole's Trainer takes it under DDP: reduce hooks set through `distributed_model`,
    the loss computed by the model itself, gradients averaged over the ranks by DDP."""
    from recbole.trainer.trainer import AbstractTrainer

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    encoder = _encoder()
    trainer = AbstractTrainer({"single_spec": False, "local_rank": rank, "device": torch.device("cpu")}, encoder)
    trainer.device = torch.device("cpu")
    rows = slice(rank * len(x_a) // world, (rank + 1) * len(x_a) // world)
    trainer.set_reduce_hook()
    loss = barlow_twins_loss(encoder(x_a[rows]), encoder(x_b[rows]), lambd=0.05, scale="dim")
    (loss + trainer.sync_grad_loss()).backward()
    torch.save({"loss": loss.detach(), "grad": encoder.weight.grad}, os.path.join(out, f"rank{rank}.pt"))
    dist.destroy_process_group()


def _single_process_step(x_a, x_b):
    encoder = _encoder()
    loss = barlow_twins_loss(encoder(x_a), encoder(x_b), lambd=0.05, scale="dim")
    loss.backward()
    return loss.detach(), encoder.weight.grad


@pytest.fixture(scope="module")
def ddp_step(tmp_path_factory):
    torch.manual_seed(1)
    x_a, x_b = torch.randn(12, 5, dtype=torch.float64), torch.randn(12, 5, dtype=torch.float64)
    out = tmp_path_factory.mktemp("ddp")
    args = (2, free_port(), x_a, x_b, str(out))
    # spawn, not fork: forking a test process that holds other tests' threads can deadlock the children
    mp.start_processes(_recbole_ddp_step, args=args, nprocs=2, join=True, start_method="spawn")
    return [torch.load(out / f"rank{r}.pt") for r in range(2)], _single_process_step(x_a, x_b)


@pytest.mark.spawns(several=True)
def test_bt_loss_in_each_process_is_the_global_batch_loss(ddp_step):
    ranks, (loss, _) = ddp_step
    for got in ranks:
        torch.testing.assert_close(got["loss"], loss)


@pytest.mark.spawns(several=True)
def test_bt_gradient_under_ddp_is_the_single_process_gradient(ddp_step):
    ranks, (_, grad) = ddp_step
    for got in ranks:
        torch.testing.assert_close(got["grad"], grad)


def _btsrec_rank_step(rank, world, port, model, batch, out):
    """BTSRec's loss on this rank's half of the batch, backward, then the gradients averaged over the ranks as
    DDP averages them; and the BT term of a batch of 1 row per rank (2 in all: too small, skipped on both)."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    rows = slice(rank * len(batch["item_id"]) // world, (rank + 1) * len(batch["item_id"]) // world)
    model.train().calculate_loss(Interaction({k: v[rows] for k, v in batch.items()})).backward()
    grads = {}
    for name, p in model.named_parameters():
        grads[name] = p.grad if p.grad is not None else torch.zeros_like(p)
        dist.all_reduce(grads[name])
        grads[name] /= world
    tiny = model.bt_loss(*torch.randn(2, 1, model.hidden_size, dtype=torch.float64))
    result = {"grads": grads, "bt": model.loss_terms["alpha * L_BT"], "tiny": tiny}
    torch.save(result, os.path.join(out, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.spawns(several=True)
@pytest.mark.parametrize("projector", [None, [12]])  # [12]: one Linear (a BatchNorm would see its rank's rows only)
def test_btsrec_gradient_under_ddp_is_the_single_process_gradient(workdir, projector):
    """BTSRec itself (next-item CE + alpha * BT on same-target partners, dropout 0 so that the passes are
    deterministic), in float64: 2 gloo processes with 8 rows each, gradients averaged as DDP does, give the
    parameter gradients of one process on the 16 rows."""
    overrides = dict(train_mode="prefix", loss_type="CE", alpha=0.5, train_batch_size=16, bt_projector=projector,
                     hidden_dropout_prob=0.0, attn_dropout_prob=0.0)  # fmt: skip
    config, train_data, *_ = prepare("BTSRec", "tiny", [TINY_YAML], tiny_config(**overrides))
    model = BTSRec(config, train_data._dataset).double()
    batch = dict(next(iter(train_data)).interaction)
    assert len(batch["item_id"]) == 16

    mp.start_processes(_btsrec_rank_step, args=(2, free_port(), model, batch, str(workdir)), nprocs=2, join=True,
                       start_method="spawn")  # fmt: skip
    ranks = [torch.load(workdir / f"rank{r}.pt") for r in range(2)]
    model.train().calculate_loss(Interaction(batch)).backward()
    single = {name: p.grad for name, p in model.named_parameters()}
    assert model.loss_terms["alpha * L_BT"] > 0
    for got in ranks:
        torch.testing.assert_close(got["bt"], model.loss_terms["alpha * L_BT"], rtol=1e-12, atol=0)
        assert got["tiny"].item() == 0.0
        assert got["grads"].keys() == single.keys()
        for name in single:
            torch.testing.assert_close(got["grads"][name], single[name], rtol=1e-9, atol=1e-12,
                                       msg=lambda m, name=name: f"{name}: {m}")  # fmt: skip


@pytest.mark.spawns(several=True)
def test_btsrec_two_cpu_processes_end_to_end_evaluate_as_one_process(workdir):
    """BTSRec trained by 2 gloo processes; the test result of rank 0 equals a single-process evaluation of the
    saved checkpoint, coverage and effective_rank included (not means over users: they cannot be averaged)."""
    metrics = {"metrics": ["Hit", "NDCG", "Coverage", "Effective_Rank"], "topk": [5, 10]}
    result = run("BTSRec", "tiny", [TINY_YAML], tiny_config(epochs=2, **metrics), nproc=2, port=free_port())
    assert result is not None and set(result["test_result"]) >= {"hit@10", "ndcg@10", "coverage@10", "effective_rank"}
    (checkpoint,) = glob.glob(os.path.join("saved", "*.pth"))  # rank 0 alone saves

    config, model, _, train_data, _, test_data = load_data_and_model(checkpoint)
    assert config["single_spec"] and not dist.is_initialized()
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.eval_collector.data_collect(train_data)  # what fit does first: the catalog size of coverage
    single = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    assert dict(single) == pytest.approx(dict(result["test_result"]), abs=1e-12)


@pytest.mark.skipif(torch.cuda.device_count() >= 2, reason="NCCL may work here")
def test_nccl_without_enough_gpus_is_one_line(workdir):
    """What each process of `run(..., nproc=2)` meets first (its Config), tested in this process."""
    rank = {"local_rank": 0, "nproc": 2, "world_size": 2, "offset": 0, "ip": "localhost", "port": free_port()}
    with pytest.raises(ConfigError, match=r"backend nccl needs one CUDA GPU per process: nproc=2, [01] visible"):
        build_config("SASRec", "tiny", [TINY_YAML], tiny_config(backend="nccl", **rank))
    with pytest.raises(ConfigError, match=r"backend must be one of \['nccl', 'gloo'\], got 'mpi'"):
        build_config("SASRec", "tiny", [TINY_YAML], tiny_config(backend="mpi", **rank))
