"""Training dataloaders of recbole_bt.

`SameTargetTrainDataLoader` is RecBole's TrainDataLoader plus, in every batch, a freshly drawn same-target partner
for each row (`recbole_bt.data.sampler`): the partner's sequence and length ride along in the batch as
`partner_item_id_list` and `partner_item_length`. Any model asks for it with `same_target_sampling: True`
(BTSRec, DuoRec); validation and test dataloaders are RecBole's, untouched.
"""
import numpy as np
import torch
from recbole.data.dataloader import TrainDataLoader

from recbole_bt.data.sampler import SameTargetSampler
from recbole_bt.errors import ConfigError


def partner_fields(config):
    """Names of the partner's sequence and length fields in a batch."""
    return "partner_" + config["ITEM_ID_FIELD"] + config["LIST_SUFFIX"], "partner_" + config["ITEM_LIST_LENGTH_FIELD"]


class SameTargetTrainDataLoader(TrainDataLoader):
    """RecBole's TrainDataLoader; each batch also carries a same-target partner per row, redrawn every batch.

    Draws are seeded from RecBole's `seed` (+ the DDP rank; per worker process when `worker` > 0), so runs repeat; they use their
    own numpy generator, so they never shift torch's random stream (dropout, initialisation).
    """

    def __init__(self, config, dataset, sampler, shuffle=False):
        super().__init__(config, dataset, sampler, shuffle=shuffle)
        if self.times != 1:
            raise ConfigError(
                "same_target_sampling needs one training row per interaction: pointwise negative sampling in the "
                "dataloader (train_neg_sample_args) multiplies rows; use train_neg_sample_args: ~"
            )
        self.same_target = SameTargetSampler(dataset.inter_feat[dataset.iid_field].numpy())
        self.partner_seq, self.partner_len = partner_fields(config)
        self._rng, self._rng_worker = np.random.default_rng(config["seed"] + (config["local_rank"] or 0)), None
        self.logger.info(
            f"same-target sampling: {len(self.same_target)} training rows, "
            f"{self.same_target.n_unique_rows} with a unique target (their own partner)"
        )

    def rng(self):
        """The generator of this process: one per dataloader worker, each seeded from torch's worker seed."""
        worker = torch.utils.data.get_worker_info()
        if worker is None:
            return self._rng
        if self._rng_worker is None or self._rng_worker[0] != worker.seed:
            self._rng_worker = (worker.seed, np.random.default_rng(worker.seed))
        return self._rng_worker[1]

    def collate_fn(self, index):
        data = super().collate_fn(index)
        partner = torch.from_numpy(self.same_target.sample(np.array(index), self.rng()))
        feat = self._dataset.inter_feat  # only the two fields the partner needs, not whole rows
        data[self.partner_seq] = feat[self._dataset.item_id_list_field][partner]
        data[self.partner_len] = feat[self._dataset.item_list_length_field][partner]
        return data
