"""`data_preparation`: RecBole's, with the training dataloader that the config asks for."""
from recbole.data import data_preparation as recbole_data_preparation
from recbole.data.dataloader import TrainDataLoader

from recbole_bt.config_ranges import train_mode_default
from recbole_bt.data.bucketing import IndexSamplerHook, LengthBucketing
from recbole_bt.data.dataloader import SameTargetTrainDataLoader


class BucketedTrainDataLoader(LengthBucketing, TrainDataLoader, IndexSamplerHook):
    """RecBole's TrainDataLoader with length-bucketed batches (`length_bucketing`)."""


class BucketedSameTargetTrainDataLoader(LengthBucketing, SameTargetTrainDataLoader, IndexSamplerHook):
    """`SameTargetTrainDataLoader` with length-bucketed batches (`length_bucketing`)."""


def data_preparation(config, dataset):
    """RecBole's split and dataloaders; with `same_target_sampling: True` the training dataloader also draws a
    same-target partner for every row, with `length_bucketing` it batches rows of similar length (validation
    and test are untouched)."""
    train_data, valid_data, test_data = recbole_data_preparation(config, dataset)
    bucketing = train_mode_default(config, "length_bucketing") and isinstance(train_data, TrainDataLoader)
    if config["same_target_sampling"]:
        loader = BucketedSameTargetTrainDataLoader if bucketing else SameTargetTrainDataLoader
    elif bucketing and type(train_data) is TrainDataLoader:
        loader = BucketedTrainDataLoader
    else:
        return train_data, valid_data, test_data
    train_data = loader(config, train_data._dataset, train_data._sampler, shuffle=config["shuffle"])
    return train_data, valid_data, test_data
