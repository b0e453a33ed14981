"""BTSRec: alpha 0 is SASRec bit for bit, the loss is L_pred + alpha * L_BT on same-target partners, it trains in
both train_modes with CE, BCE and SCE, and bad settings fail at construction with one line."""
import pytest
import torch
from recbole.model.sequential_recommender.sasrec import SASRec as RecBoleSASRec

from conftest import LEARN, TINY_YAML, assert_learned, tiny_config, train_tiny
from recbole_bt import ConfigError
from recbole_bt.data import partner_fields
from recbole_bt.loss import barlow_twins_loss
from recbole_bt.model import BTSRec, SASRec
from recbole_bt.quick_start import load_data_and_model, prepare, run_recbole_bt


def assert_same_training(a, b):
    assert a[1] == b[1]  # losses, exactly
    assert a[0].keys() == b[0].keys() and all(torch.equal(a[0][k], b[0][k]) for k in a[0])


def test_alpha_zero_is_recbole_sasrec_bit_for_bit(workdir):
    theirs = train_tiny(RecBoleSASRec, train_mode="prefix", loss_type="CE")
    ours = train_tiny(BTSRec, train_mode="prefix", loss_type="CE", alpha=0.0)
    assert_same_training(ours, theirs)


@pytest.mark.parametrize("loss_type", ["CE", "SCE"])
def test_alpha_zero_is_sasrec_in_all_positions(workdir, loss_type):
    settings = dict(train_mode="all_positions", loss_type=loss_type, bucket_size_y=8)
    assert_same_training(train_tiny(BTSRec, alpha=0.0, **settings), train_tiny(SASRec, **settings))


def test_alpha_positive_changes_training(workdir):
    settings = dict(train_mode="prefix", loss_type="CE")
    base, bt = train_tiny(BTSRec, alpha=0.0, **settings), train_tiny(BTSRec, alpha=0.5, **settings)
    assert base[1] != bt[1]


def test_loss_is_prediction_plus_alpha_barlow_twins_on_partners(workdir):
    config, train_data, *_ = prepare("BTSRec", "tiny", [TINY_YAML], tiny_config(alpha=0.3, train_mode="prefix"))
    model = BTSRec(config, train_data._dataset).eval()  # dropout off: both passes are deterministic
    batch = next(iter(train_data))
    seq, length = partner_fields(config)
    with torch.no_grad():
        z_a = model.forward(batch["item_id_list"], batch["item_length"])
        z_b = model.forward(batch[seq], batch[length])
        logits = z_a @ model.item_embedding.weight.T
        expected = torch.nn.functional.cross_entropy(logits, batch["item_id"]) + 0.3 * barlow_twins_loss(
            z_a, z_b, lambd=config["lambda"], scale="dim"
        )
        torch.testing.assert_close(model.calculate_loss(batch), expected)


def test_partners_in_chunks_of_similar_length_give_the_one_pass_outputs(workdir):
    """With length bucketing, training passes the partners in chunks of `partner_chunk_rows` rows, each cut to its
    longest: the outputs of one pass at the batch's longest partner, in the rows' order (dropout off to compare)."""
    config, train_data, *_ = prepare("BTSRec", "tiny", [TINY_YAML], tiny_config(
        train_mode="all_positions", hidden_dropout_prob=0.0, attn_dropout_prob=0.0, partner_chunk_rows=3))  # fmt: skip
    model = BTSRec(config, train_data._dataset).train()
    batch = next(iter(train_data))
    seq, length = partner_fields(config)
    assert len(set(batch[length].tolist())) > 1  # partners of several lengths: the chunks are cut differently
    with torch.no_grad():
        chunked = model.partner_output(batch)
        model.partner_chunk_rows = 0
        torch.testing.assert_close(chunked, model.partner_output(batch), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(chunked, model.forward(batch[seq], batch[length]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "overrides",
    [
        {"train_mode": "all_positions", "loss_type": "CE"},
        {"train_mode": "all_positions", "loss_type": "BCE"},
        {"train_mode": "all_positions", "loss_type": "SCE", "bucket_size_y": 8},
        {"train_mode": "prefix", "loss_type": "SCE", "bucket_size_y": 8},
        {"train_mode": "prefix", "loss_type": "BCE", "bt_projector": [16, 16]},
        {"train_mode": "prefix", "same_target_sampling": False},
    ],
)
def test_trains_end_to_end(workdir, overrides):
    result = run_recbole_bt("BTSRec", "tiny", [TINY_YAML], tiny_config(**LEARN, **overrides))
    assert_learned(result)


def test_checkpoint_reloads(workdir):
    run_recbole_bt("BTSRec", "tiny", [TINY_YAML], tiny_config(epochs=1))
    checkpoint = next((workdir / "saved").glob("BTSRec-*.pth"))
    config, model, _, train_data, _, _ = load_data_and_model(str(checkpoint))
    assert isinstance(model, BTSRec) and partner_fields(config)[0] in next(iter(train_data))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"alpha": -0.1}, r"'alpha' must be a finite number in \[0, inf\), got -0.1"),
        ({"lambda": -1}, r"'lambda' must be a finite number in \[0, inf\), got -1"),
        ({"train_batch_size": 1}, "too small for Barlow Twins"),
        ({"train_batch_size": 2}, r"'train_batch_size' must be an integer in \[3, inf\) \(too small for Barlow Twins"),
        ({"loss_type": "BPR"}, r"'loss_type' must be one of \['CE', 'BCE', 'SCE'\], got 'BPR'"),
        ({"loss_type": "SCE", "bucket_size_y": 64}, "larger than the catalog"),
        ({"bt_scale": "batch"}, "'bt_scale' must be one of"),
        ({"bt_projector": [0]}, "'bt_projector' must be a non-empty list of layer sizes, each an integer in .*, or ~"),
    ],
)
def test_bad_settings_fail_at_construction(workdir, overrides, message):
    with pytest.raises(ConfigError, match=message):
        run_recbole_bt("BTSRec", "tiny", [TINY_YAML], tiny_config(**overrides))


@pytest.mark.parametrize("projector, width", [(None, "8 (hidden_size)"), ([16, 12], "12 (the bt_projector output)")])
def test_rank_warning_fires_up_to_d_rows(workdir, caplog, projector, width):
    """The centred cross-correlation of B rows has rank <= B - 1: one warning line at B = D, none at B = D + 1."""
    config, train_data, *_ = prepare("BTSRec", "tiny", [TINY_YAML], tiny_config(train_mode="prefix"))
    config["bt_projector"] = projector
    dim = int(width.split()[0])
    for rows, n_lines in ((dim, 1), (dim + 1, 0)):
        config["train_batch_size"] = rows
        caplog.clear()
        with caplog.at_level("WARNING"):
            BTSRec(config, train_data._dataset)
        lines = [r.getMessage() for r in caplog.records if "BT batch" in r.getMessage()]
        assert len(lines) == n_lines and all("\n" not in line for line in lines)
        assert all(f"BTSRec: the BT batch has {dim} rows <= D = {width}: " in line for line in lines)


def test_two_rows_give_barlow_twins_no_gradient():
    """Why BTSRec skips a batch of 2 rows (MIN_BT_ROWS): each centred dimension is (+a, -a), standardised to
    +-1/sqrt(2) whatever the embeddings, so C is all +-1 and the gradient is 0 (up to eps); 3 rows have one."""
    torch.manual_seed(0)
    for rows, has_gradient in ((2, False), (3, True)):
        for normalize_rows in (True, False):
            z_a = torch.randn(rows, 4, dtype=torch.float64, requires_grad=True)
            z_b = torch.randn(rows, 4, dtype=torch.float64)
            barlow_twins_loss(z_a, z_b, lambd=0.05, normalize_rows=normalize_rows).backward()
            assert (z_a.grad.abs().max() > 1e-3) == has_gradient


def test_batch_too_small_for_bt_gets_zero_and_one_log_line(workdir, caplog):
    config, train_data, *_ = prepare("BTSRec", "tiny", [TINY_YAML], tiny_config(alpha=0.3, train_mode="prefix"))
    model = BTSRec(config, train_data._dataset)
    batch = next(iter(train_data))
    with caplog.at_level("INFO"):
        for rows in (1, 2, 2, 1):  # several epochs' last batches
            z = torch.randn(rows, model.hidden_size)
            assert model.bt_loss(z, torch.randn(rows, model.hidden_size)).item() == 0.0
        loss = model.calculate_loss(batch[:2])
        assert model.loss_terms["alpha * L_BT"].item() == 0.0 and loss.item() == model.loss_terms["L_pred"].item()
        model.calculate_loss(batch[:3])
        assert model.loss_terms["alpha * L_BT"].item() > 0  # 3 rows: BT is on
    lines = [r.getMessage() for r in caplog.records if "gets a BT term of 0" in r.getMessage()]
    assert lines == ["BTSRec: Barlow Twins needs a batch of >= 3 rows (and >= 2 on each process); a batch of 1 gets "
                     "a BT term of 0 (said once per run: an epoch's short last batch)"]  # fmt: skip
