"""CLUE and the pretrain -> fine-tune pipeline: SimSiam loss and stop-gradient by hand, the [UR] token, the two
stages end to end, checkpoints saved, loaded and refused, CLUEZero, and bad settings."""
import glob

import pytest
import torch
from recbole.utils import init_seed

from conftest import LEARN, TINY_YAML, assert_beats_untrained, assert_learned, tiny_config
from recbole_bt import CheckpointError, ConfigError
from recbole_bt.loss import simsiam_loss
from recbole_bt.model.pretrain import ENCODER_PREFIXES
from recbole_bt.quick_start import prepare, run_recbole_bt

SMALL = {"hidden_size": 8, "n_heads": 2, "inner_size": 16, "projector_sizes": [16, 16, 16], "predictor_hidden": 4}


# The [UR] token learns tiny's paths far slower than the last item's output: at hidden 8 and LEARN its best
# validation NDCG@10 barely moves (0.172 -> 0.191); this size and budget lift it to 0.24-0.36 (untrained 0.154).
UR_SIZE = {"hidden_size": 32, "inner_size": 64, "n_layers": 2}
UR_LEARN = {**UR_SIZE, **LEARN, "epochs": 10}


def clue_config(**overrides):
    return tiny_config(**dict(SMALL, **overrides))


def test_simsiam_loss_is_minus_one_for_identical_views():
    z = torch.randn(5, 4)
    assert simsiam_loss(z, z, z, z).item() == pytest.approx(-1.0)
    assert simsiam_loss(z, z, -z, -z).item() == pytest.approx(1.0)
    # by hand: cos((1,0), (1,1)) = 1/sqrt(2), cos((0,1), (1,0)) = 0 -> -(1/sqrt(2) + 0) / 2
    p1, p2, z1, z2 = torch.tensor([[1.0, 0]]), torch.tensor([[0.0, 1]]), torch.tensor([[1.0, 0]]), torch.tensor([[1.0, 1]])
    assert simsiam_loss(p1, p2, z1, z2).item() == pytest.approx(-(2**-0.5) / 2)


@pytest.mark.parametrize("stop_gradient", [True, False])
def test_stop_gradient_keeps_the_gradient_out_of_the_target_branch(stop_gradient):
    p1, p2, z1, z2 = (torch.randn(6, 4, requires_grad=True) for _ in range(4))
    simsiam_loss(p1, p2, z1, z2, stop_gradient=stop_gradient).backward()
    assert p1.grad is not None and p2.grad is not None
    assert (z1.grad is None and z2.grad is None) if stop_gradient else (z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0)


def test_clue_loss_is_minus_one_without_dropout_and_predictor(workdir):
    config, train, _, _, trainer = prepare("CLUE", "tiny", [TINY_YAML], clue_config(
        predictor=False, hidden_dropout_prob=0.0, attn_dropout_prob=0.0))  # fmt: skip
    batch = next(iter(train))
    assert trainer.model.calculate_loss(batch).item() == pytest.approx(-1.0, abs=1e-5)


def test_views_leave_the_batch_untouched(workdir):
    _, train, _, _, trainer = prepare("CLUE", "tiny", [TINY_YAML], clue_config(augmentations=[{"mask": 0.5}, {"crop": 0.5}, {"reorder": 0.5}]))
    batch = next(iter(train))
    before = {k: v.clone() for k, v in batch.interaction.items()}
    (s1, l1), (s2, l2) = trainer.model.views(batch)
    trainer.model.calculate_loss(batch).backward()
    assert all(torch.equal(before[k], batch[k]) for k in before)
    assert not torch.equal(s1, s2) and (s1 == trainer.model.MASK_ID).any() | (s2 == trainer.model.MASK_ID).any()


@pytest.mark.parametrize("fused", [True, False])
def test_ur_token_per_position_equals_ur_appended_to_each_prefix(workdir, fused):
    # encode's two streams (recbole_bt.model.ur_stream) against forward on each prefix with [UR] appended
    _, train, _, _, trainer = prepare("CLUE", "tiny", [TINY_YAML], clue_config(fused_attention=fused, n_layers=2))
    model = trainer.model.eval()
    seq = torch.tensor([[3, 5, 7, 9, 0, 0, 0, 0, 0, 0], [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]])
    length = torch.tensor([4, 10])
    with torch.no_grad():
        every = model.encode(seq, length)  # [B L H]
        for t in range(10):
            prefix = torch.where(torch.arange(10) <= t, seq, 0)
            alone = model.forward(prefix, torch.minimum(length, torch.tensor(t + 1)))
            for b in range(2):
                if t < length[b]:
                    assert torch.allclose(every[b, t], alone[b], atol=1e-5), (b, t)
        assert torch.allclose(every[torch.arange(2), length - 1], model.forward(seq, length), atol=1e-5)


def test_pretrain_saves_checkpoints_and_finetune_loads_the_encoder(workdir):
    result = run_recbole_bt("CLUE", "tiny", [TINY_YAML], clue_config(pretrain_epochs=5, save_step=2, **UR_SIZE))
    pretrained = result["pretrain"]
    assert result["test_result"] is None and pretrained["epochs"] == 5
    assert sorted(glob.glob("saved/CLUE-tiny-*.pth")) == ["saved/CLUE-tiny-2.pth", "saved/CLUE-tiny-4.pth", "saved/CLUE-tiny-5.pth"]
    assert pretrained["pretrained_model_file"] == "saved/CLUE-tiny-5.pth" and 0 < pretrained["embedding_std"] < 1
    assert 0 <= pretrained["projection_std"] < 1  # the projector's output, SimSiam's collapse indicator
    saved = torch.load("saved/CLUE-tiny-5.pth", weights_only=False)["state_dict"]

    _, _, _, _, trainer = prepare("CLUE", "tiny", [TINY_YAML], clue_config(train_stage="finetune", pre_model_path="saved/CLUE-tiny-5.pth", **UR_SIZE))
    state = trainer.model.state_dict()
    encoder = [k for k in state if k.startswith(ENCODER_PREFIXES)]
    assert len(encoder) > 10 and all(torch.equal(state[k], saved[k]) for k in encoder)
    assert "projector.0.weight" in saved and not any(k.startswith(("projector", "predictor")) for k in state)  # dropped
    init_seed(2020, True)
    finetune = clue_config(train_stage="finetune", pre_model_path="saved/CLUE-tiny-5.pth", **UR_LEARN)
    # four fine-tuning seeds from this checkpoint: best valid 0.215-0.233 (untrained 0.188)
    assert_beats_untrained("CLUE", run_recbole_bt("CLUE", "tiny", [TINY_YAML], finetune), finetune, margin=0.02)


def test_pretraining_stops_early_on_the_loss(workdir, caplog):
    """The log says why pretraining stopped, and that `epochs` (tiny.yaml sets it) is not pretraining's budget."""
    import logging

    with caplog.at_level(logging.INFO):
        result = run_recbole_bt("CLUE", "tiny", [TINY_YAML], clue_config(pretrain_epochs=50, pretrain_stopping_step=2, learning_rate=0.0))
    assert result["pretrain"]["epochs"] < 50  # the loss cannot improve with a learning rate of 0 (only dropout noise)
    assert "pretraining stopped: no lower loss for 2 epochs" in caplog.text
    assert "pretraining runs at most pretrain_epochs = 50 epochs" in caplog.text
    assert "the epochs = 2 given here applies to fine-tuning only" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        run_recbole_bt("CLUE", "tiny", [TINY_YAML], clue_config(pretrain_epochs=1))
    assert "pretraining stopped: pretrain_epochs = 1 reached (loss still falling)" in caplog.text


def test_clue_zero_trains_from_random_weights_and_refuses_a_checkpoint(workdir):
    config = clue_config(**UR_LEARN)
    assert_beats_untrained("CLUEZero", run_recbole_bt("CLUEZero", "tiny", [TINY_YAML], config), config, margin=0.05)
    with pytest.raises(ConfigError, match="CLUEZero fine-tunes from random weights"):
        prepare("CLUEZero", "tiny", [TINY_YAML], clue_config(pre_model_path="x.pth"))


def test_checkpoint_of_another_model_or_shape_is_refused(workdir):
    sasrec = run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(epochs=1))
    [sasrec_file] = glob.glob("saved/SASRec-*.pth")
    with pytest.raises(CheckpointError, match=r"cannot fine-tune CLUE from .*SASRec-.*it holds a SASRec model, not a pretrained"):
        prepare("CLUE", "tiny", [TINY_YAML], clue_config(train_stage="finetune", pre_model_path=sasrec_file))
    run_recbole_bt("CLUE", "tiny", [TINY_YAML], clue_config(pretrain_epochs=1))
    with pytest.raises(CheckpointError, match=r"the encoders differ \(item_embedding.weight: \(33, 8\) in the checkpoint, \(33, 16\) here and 18 more"):
        prepare("CLUE", "tiny", [TINY_YAML], clue_config(train_stage="finetune", pre_model_path="saved/CLUE-tiny-1.pth", hidden_size=16))
    with pytest.raises(CheckpointError, match="pre_model_path 'nowhere.pth' not found"):
        prepare("CLUE", "tiny", [TINY_YAML], clue_config(train_stage="finetune", pre_model_path="nowhere.pth"))
    assert sasrec["test_result"]


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"train_stage": "pretrian"}, r"'train_stage' must be one of \['pretrain', 'finetune', 'user_tasks'\]"),
        ({"user_token": "CLS"}, r"'user_token' must be one of \['UR', 'last'\]"),
        ({"projector_sizes": [16, 0]}, r"'projector_sizes' must be a non-empty list of layer sizes, each an integer in \[1, 65536\], got \[16, 0\]"),
        ({"augmentations": [{"crop": 1.5}]}, "crop"),
        ({"train_batch_size": 1}, r"'train_batch_size' must be at least 2 in train_stage pretrain"),
    ],
)
def test_bad_settings_are_one_line_errors(workdir, settings, message):
    with pytest.raises(ConfigError, match=message):
        prepare("CLUE", "tiny", [TINY_YAML], clue_config(**settings))


@pytest.mark.parametrize("user_token, train_mode", [("UR", "all_positions"), ("UR", "prefix"), ("last", "all_positions")])
def test_finetune_in_both_train_modes_and_user_tokens(workdir, user_token, train_mode):
    config = clue_config(user_token=user_token, train_mode=train_mode, **(LEARN if user_token == "last" else UR_LEARN))
    result = run_recbole_bt("CLUEZero", "tiny", [TINY_YAML], config)
    if user_token == "last":
        assert_learned(result)
    else:
        assert_beats_untrained("CLUEZero", result, config, margin=0.05)
