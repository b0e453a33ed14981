"""Data pipeline pieces: training rows per `train_mode` (dataset.py)."""
from recbole_bt.data.dataset import TRAIN_MODES, SequentialDataset, target_list_field

__all__ = ["TRAIN_MODES", "SequentialDataset", "target_list_field"]
