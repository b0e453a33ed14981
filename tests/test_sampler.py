"""The same-target sampler: every draw shares the anchor's target, is never the anchor (unless alone), is uniform
over the candidates, repeats with the seed; and the dataloader uses it for training batches only."""
import numpy as np
import pytest
from scipy.stats import chisquare

from conftest import TINY_YAML, tiny_config
from recbole_bt import ConfigError
from recbole_bt.data import SameTargetSampler, SameTargetTrainDataLoader, partner_fields
from recbole_bt.quick_start import prepare

TARGETS = np.array([5, 3, 5, 7, 5, 3, 9, 5])  # target 5: rows 0 2 4 7; 3: rows 1 5; 7 and 9: alone


def test_groups_by_hand():
    sampler = SameTargetSampler(TARGETS)
    assert sampler.candidates(0).tolist() == [2, 4, 7] and sampler.candidates(5).tolist() == [1]
    assert sampler.candidates(3).tolist() == [3] and sampler.n_unique_rows == 2


def test_draws_share_the_target_and_skip_the_anchor():
    sampler = SameTargetSampler(TARGETS)
    rng = np.random.default_rng(0)
    index = np.tile(np.arange(len(TARGETS)), 500)
    partner = sampler.sample(index, rng)
    assert (TARGETS[partner] == TARGETS[index]).all()
    alone = np.isin(TARGETS[index], [7, 9])
    assert (partner[alone] == index[alone]).all() and (partner[~alone] != index[~alone]).all()
    assert (partner[index == 1] == 5).all()  # the only other row with target 3


def test_draws_are_uniform_over_the_candidates():
    rng = np.random.default_rng(1)
    targets = rng.integers(1, 4, size=60)  # ~20 rows per target
    sampler = SameTargetSampler(targets)
    for anchor in (0, 1, 2):
        partner = sampler.sample(np.full(20000, anchor), rng)
        candidates = sampler.candidates(anchor)
        counts = np.array([(partner == c).sum() for c in candidates])
        assert counts.sum() == 20000  # nothing outside the candidates
        assert chisquare(counts).pvalue > 1e-3  # uniform (fails with p ~ 0 for a skewed draw)


def test_seeded_and_vectorised_over_a_large_dataset():
    targets = np.random.default_rng(2).integers(1, 3000, size=1_000_000)
    sampler = SameTargetSampler(targets)
    index = np.arange(1_000_000)
    a = sampler.sample(index, np.random.default_rng(7))
    b = sampler.sample(index, np.random.default_rng(7))
    assert (a == b).all() and (targets[a] == targets).all()
    assert (a != sampler.sample(index, np.random.default_rng(8))).mean() > 0.9


def test_bad_targets():
    with pytest.raises(ValueError, match="non-negative"):
        SameTargetSampler(np.array([1, -2]))


@pytest.mark.parametrize("train_mode", ["prefix", "all_positions"])
def test_dataloader_adds_partners_to_training_batches_only(workdir, train_mode):
    config, train_data, valid_data, test_data, _ = prepare(
        "BTSRec", "tiny", [TINY_YAML], tiny_config(train_mode=train_mode, train_batch_size=16)
    )
    seq_field, len_field = partner_fields(config)
    assert isinstance(train_data, SameTargetTrainDataLoader)
    dataset = train_data._dataset
    rows = {(tuple(s.tolist()), t) for s, t in zip(dataset.inter_feat["item_id_list"], dataset.inter_feat["item_id"].tolist())}
    draws = []
    for _ in range(2):  # two epochs: partners are redrawn
        epoch = []
        for batch in train_data:
            for seq, n, t in zip(batch[seq_field], batch[len_field], batch["item_id"].tolist()):
                assert n > 0 and (tuple(seq.tolist()), t) in rows  # a training row whose target is the row's
            epoch.append(batch[seq_field])
        draws.append(epoch)
    assert any((a != b).any() for a, b in zip(*draws))
    for loader in (valid_data, test_data):
        assert not isinstance(loader, SameTargetTrainDataLoader)
        assert seq_field not in next(iter(loader))[0]


def test_no_partners_unless_asked(workdir):
    _, train_data, *_ = prepare("SASRec", "tiny", [TINY_YAML], tiny_config())
    assert not isinstance(train_data, SameTargetTrainDataLoader)


def test_pointwise_dataloader_negatives_are_refused(workdir):
    overrides = tiny_config(train_mode="prefix", loss_type="BCE", train_neg_sample_args={"distribution": "uniform", "sample_num": 1})
    with pytest.raises(ConfigError, match="same_target_sampling needs one training row per interaction"):
        prepare("BTSRec", "tiny", [TINY_YAML], overrides)
