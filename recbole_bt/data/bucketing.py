"""Length bucketing of training batches (`length_bucketing`): less padding, the same rows.

RecBole pads every training row to `MAX_ITEM_LIST_LENGTH` and draws batches uniformly, so a batch computes at
the length of its longest row and, at L = 200 on ML-1M, about 43% of the window slots are padding. Here:

- `length_bucketed_batches`: each epoch, the rows are shuffled, cut into pools of `POOL_BATCHES` batches, each
  pool is sorted by length (longest first) and cut into batches, and the batches are shuffled; every row is in
  exactly one batch, and the only short batch (the epoch's remainder) comes last, as in RecBole;
- `LengthBucketSampler`: that order for a torch DataLoader (RecBole's loader chunks it into the same batches);
  under DDP every rank draws the same order (seeded with the seed and the epoch), takes every world-th batch,
  and the epoch is padded to whole batches and a multiple of the world as RecBole's DistributedSampler pads;
- `LengthBucketing`: a mixin for RecBole's TrainDataLoader (and `SameTargetTrainDataLoader`) that uses the
  sampler and cuts each batch's sequence fields to its longest row (rows are left-aligned, zero-padded on the
  right, so only padding is cut; a partner sequence is cut to its own longest).
"""
import numpy as np
import torch

POOL_BATCHES = 64  # batches per pool sorted by length: ~8k windows, a whole ML-1M epoch at L = 200


def length_bucketed_batches(lengths, batch_size, generator, pool_batches=POOL_BATCHES, pad_to=None):
    """One epoch's batches (a list of int64 arrays of row ids) of rows grouped by `lengths` [n] (numpy).

    `generator` (torch.Generator) draws the shuffles. `pad_to` (None: no padding) fills the short batch with
    rows from the start of the epoch's order and adds whole batches until their number is a multiple of it."""
    lengths = np.asarray(lengths)
    order = torch.randperm(len(lengths), generator=generator).numpy()
    pool = batch_size * pool_batches
    pools = [order[s : s + pool] for s in range(0, len(order), pool)]
    flat = np.concatenate([p[np.argsort(-lengths[p], kind="stable")] for p in pools]) if pools else order
    batches = [flat[s : s + batch_size] for s in range(0, len(flat), batch_size)]
    short = batches.pop() if batches and len(batches[-1]) < batch_size else None
    batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    if short is not None and pad_to is None:
        batches.append(short)
    elif short is not None:
        batches.append(np.concatenate([short, flat[: batch_size - len(short)]]))
    if pad_to is not None and batches:
        batches += batches[: -len(batches) % pad_to]
    return batches


class LengthBucketSampler(torch.utils.data.Sampler):
    """Row ids in the order of `length_bucketed_batches`, a new draw per epoch; the DataLoader batches them by
    `batch_size`. Single process: draws with `generator` (RecBole's dataloader generator, whose state a resumed
    run restores). Under DDP (`world` > 1): seeded with `seed` + the epoch (`set_epoch`), rank `rank`'s batches."""

    def __init__(self, lengths, batch_size, generator, seed=0, rank=0, world=1):
        self.lengths, self.batch_size, self.generator = np.asarray(lengths), batch_size, generator
        self.seed, self.rank, self.world, self.epoch = seed, rank, world, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def batches(self):
        if self.world == 1:
            return length_bucketed_batches(self.lengths, self.batch_size, self.generator)
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return length_bucketed_batches(self.lengths, self.batch_size, generator, pad_to=self.world)[self.rank :: self.world]

    def __iter__(self):
        batches = self.batches()
        return iter(np.concatenate(batches).tolist() if batches else [])

    def __len__(self):
        if self.world == 1:
            return len(self.lengths)
        n_batches = -(-len(self.lengths) // self.batch_size)
        return -(-n_batches // self.world) * self.batch_size


class IndexSamplerHook(torch.utils.data.DataLoader):
    """Placed after RecBole's AbstractDataLoader in a loader's bases: the torch DataLoader gets the loader's
    `index_sampler()` (when not None) instead of RecBole's shuffle or DistributedSampler."""

    def __init__(self, *args, **kwargs):
        sampler = self.index_sampler()
        if sampler is not None:
            kwargs.update(sampler=sampler, shuffle=False)
        super().__init__(*args, **kwargs)

    def index_sampler(self):
        return None


class LengthBucketing:
    """Mixin for a RecBole TrainDataLoader: `class X(LengthBucketing, SomeTrainDataLoader, IndexSamplerHook)`."""

    def index_sampler(self):
        dataset, config = self._dataset, self.config
        world = 1 if config["single_spec"] else config["world_size"]
        rank = 0 if config["single_spec"] else (config["local_rank"] or 0)
        lengths = dataset.inter_feat[dataset.item_list_length_field].numpy()
        max_len = config["MAX_ITEM_LIST_LENGTH"]
        self.sequence_fields = [
            f for f in dataset.inter_feat.columns
            if f.endswith(config["LIST_SUFFIX"]) and dataset.inter_feat[f].dim() == 2
            and dataset.inter_feat[f].shape[1] == max_len
        ]  # fmt: skip
        return LengthBucketSampler(lengths, self.step, self.generator, config["seed"], rank, world)

    def collate_fn(self, index):
        data = super().collate_fn(index)
        longest = int(data[self._dataset.item_list_length_field].max())
        for field in self.sequence_fields:
            data[field] = data[field][:, :longest]
        partner = getattr(self, "partner_seq", None)
        if partner is not None and partner in data:
            data[partner] = data[partner][:, : int(data[self.partner_len].max())]
        return data
