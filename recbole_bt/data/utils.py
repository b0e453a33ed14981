"""`data_preparation`: RecBole's, with the training dataloader that the config asks for."""
from recbole.data import data_preparation as recbole_data_preparation
from recbole.data.dataloader import FullSortEvalDataLoader, TrainDataLoader
from recbole.utils import ModelType

from recbole_bt.data.bucketing import IndexSamplerHook, LengthBucketing
from recbole_bt.data.dataloader import SameTargetTrainDataLoader
from recbole_bt.data.masking import SeenMaskFullSortEvalDataLoader
from recbole_bt.errors import ConfigError


class BucketedTrainDataLoader(LengthBucketing, TrainDataLoader, IndexSamplerHook):
    """RecBole's TrainDataLoader with length-bucketed batches (`length_bucketing`)."""


class BucketedSameTargetTrainDataLoader(LengthBucketing, SameTargetTrainDataLoader, IndexSamplerHook):
    """`SameTargetTrainDataLoader` with length-bucketed batches (`length_bucketing`)."""


def data_preparation(config, dataset):
    """RecBole's split and dataloaders; with `same_target_sampling: True` the training dataloader also draws a
    same-target partner for every row, with `length_bucketing` it batches rows of similar length; with
    `eval_mask_seen: True` validation and test rank the catalog without each row's already-seen items."""
    train_data, valid_data, test_data = recbole_data_preparation(config, dataset)
    if config["eval_mask_seen"]:
        valid_data, test_data = (masked_eval_data(config, data) for data in (valid_data, test_data))
    bucketing = bool(config["length_bucketing"]) and isinstance(train_data, TrainDataLoader)
    if config["same_target_sampling"]:
        loader = BucketedSameTargetTrainDataLoader if bucketing else SameTargetTrainDataLoader
    elif bucketing and type(train_data) is TrainDataLoader:
        loader = BucketedTrainDataLoader
    else:
        return train_data, valid_data, test_data
    train_data = loader(config, train_data._dataset, train_data._sampler, shuffle=config["shuffle"])
    return train_data, valid_data, test_data


def masked_eval_data(config, eval_data):
    """`eval_data` (RecBole's full-ranking dataloader of sequential rows) with the rows' seen items masked."""
    if eval_data is None or isinstance(eval_data, SeenMaskFullSortEvalDataLoader):
        return eval_data
    if type(eval_data) is not FullSortEvalDataLoader or config["MODEL_TYPE"] != ModelType.SEQUENTIAL:
        raise ConfigError(
            f"eval_mask_seen masks seen items in the full ranking of sequential models; {config['model']} is "
            f"evaluated with {type(eval_data).__name__} (eval_args mode {config['eval_args']['mode']}): "
            f"set eval_mask_seen: False, or eval_args mode: full"
        )
    return SeenMaskFullSortEvalDataLoader(config, eval_data._dataset, eval_data._sampler, shuffle=False)
