"""Data pipeline pieces: loading a dataset by name with its checks (`create_dataset`: loading.py, checks.py),
training rows per `train_mode` and the global temporal split (dataset.py, split.py), the same-target sampler
(sampler.py) and the dataloader that serves it (dataloader.py), wired in by `data_preparation` (utils.py)."""
from recbole_bt.data.dataloader import SameTargetTrainDataLoader, partner_fields
from recbole_bt.data.dataset import TRAIN_MODES, SequentialDataset, target_list_field
from recbole_bt.data.loading import check_dataset_files, create_dataset
from recbole_bt.data.sampler import SameTargetSampler
from recbole_bt.data.split import global_temporal_split, is_positions
from recbole_bt.data.utils import data_preparation

__all__ = [
    "TRAIN_MODES", "SequentialDataset", "target_list_field", "SameTargetSampler", "SameTargetTrainDataLoader",
    "partner_fields", "data_preparation", "global_temporal_split", "is_positions", "create_dataset", "check_dataset_files",
]
