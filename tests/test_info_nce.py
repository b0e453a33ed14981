"""InfoNCE of CL4SRec and DuoRec (recbole_bt.loss.info_nce) by hand."""
import math

import pytest
import torch

from recbole_bt.loss import info_nce


def test_info_nce_2x2_by_hand():
    """B = 2, D = 2, tau = 1, both views the unit vectors: every anchor sees its positive at dot 1 and its two
    negatives at dot 0, so each of the 4 terms is -log(e / (e + 2))."""
    z = torch.eye(2)
    assert info_nce(z, z.clone(), temperature=1.0).item() == pytest.approx(math.log((math.e + 2) / math.e))


def test_info_nce_temperature_and_cosine_by_hand():
    z_i, z_j = torch.tensor([[2.0, 0], [0, 1]]), torch.tensor([[1.0, 0], [0, 3]])
    # dot / 0.5; anchor 0 = (2, 0): positive (1, 0) -> 4, negatives (0, 1) -> 0 and (0, 3) -> 0
    # anchor 1 = (0, 1): positive (0, 3) -> 6, negatives (2, 0), (1, 0) -> 0
    # anchor 2 = (1, 0): positive (2, 0) -> 4, negatives (0, 1), (0, 3) -> 0; anchor 3 = (0, 3): positive -> 6
    terms = [math.log(1 + 2 * math.exp(-4)), math.log(1 + 2 * math.exp(-6))] * 2
    assert info_nce(z_i, z_j, 0.5).item() == pytest.approx(sum(terms) / 4, rel=1e-5)
    # cosine: the same geometry with unit vectors, positives at 1 / 0.5 = 2
    cos = math.log(1 + 2 * math.exp(-2))
    assert info_nce(z_i, z_j, 0.5, sim="cos").item() == pytest.approx(cos, rel=1e-5)


def test_same_target_rows_are_masked_as_false_negatives():
    """Rows 0 and 1 share their target: for anchor 0, rows 1 and 1' leave the denominator (only 2' remains a
    negative), and the loss equals that of the batch without row 1's views for that anchor."""
    g = torch.Generator().manual_seed(0)
    z_i, z_j = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    targets = torch.tensor([7, 7, 9])
    z = torch.cat([z_i, z_j])
    logits = z @ z.T
    expected = []
    for anchor in range(6):
        pos = (anchor + 3) % 6
        same = {k for k in range(6) if targets[k % 3] == targets[anchor % 3]} - {pos}
        keep = [k for k in range(6) if k not in same]
        expected.append(-(logits[anchor, pos] - torch.logsumexp(logits[anchor, keep], 0)).item())
    assert info_nce(z_i, z_j, 1.0, targets=targets).item() == pytest.approx(sum(expected) / 6, rel=1e-5)
    assert info_nce(z_i, z_j, 1.0).item() != pytest.approx(sum(expected) / 6, rel=1e-3)


def test_bad_similarity_is_refused():
    with pytest.raises(ValueError, match="sim"):
        info_nce(torch.eye(2), torch.eye(2), 1.0, sim="l2")
