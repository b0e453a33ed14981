"""`data_preparation`: RecBole's, with the training dataloader that the config asks for."""
from recbole.data import data_preparation as recbole_data_preparation

from recbole_bt.data.dataloader import SameTargetTrainDataLoader


def data_preparation(config, dataset):
    """RecBole's split and dataloaders; with `same_target_sampling: True` the training dataloader also draws a
    same-target partner for every row (validation and test are untouched)."""
    train_data, valid_data, test_data = recbole_data_preparation(config, dataset)
    if config["same_target_sampling"]:
        train_data = SameTargetTrainDataLoader(config, train_data._dataset, train_data._sampler, shuffle=config["shuffle"])
    return train_data, valid_data, test_data
