"""Sequence augmentations for contrastive and non-contrastive views (CL4SRec, CLUE, BTPretrain).

Sequences are RecBole's: `item_seq` LongTensor [B L], left-aligned (items at positions 0..n-1 of a row of length
n, zero padding to the right), `item_seq_len` LongTensor [B] (n >= 1). Every function

- is pure: it returns new tensors of the same shape and never writes into its inputs (the dataloader's stored
  rows must not change);
- is vectorised over the batch (random keys + sort/gather and masks, no Python loop over rows);
- draws all its randomness from `generator` (a `torch.Generator` on the tensors' device; None: torch's global
  generator), so a seeded generator gives reproducible views.

- `item_mask`: replace floor(rate * n) uniformly chosen items of each row by the [MASK] id (CL4SRec's mask).
- `crop`: keep a contiguous run of max(1, floor(ratio * n)) items at a uniform offset, left-aligned.
- `reorder`: shuffle a contiguous window of floor(ratio * n) items at a uniform offset.
- `dropout`: identity (two identical views differ only through the encoder's dropout, as in CLUE).
- `Augmenter`: one operation per row, drawn uniformly from a list given in the config; `Augmenter.pair`: two
  views of each row by two distinct operations of the list (CL4SRec's scheme).
"""
import torch

from recbole_bt.errors import ConfigError


def _check(item_seq, item_seq_len):
    if item_seq.dim() != 2 or item_seq_len.shape != item_seq.shape[:1]:
        raise ValueError(f"item_seq must be [B L] and item_seq_len [B], got {tuple(item_seq.shape)} "
                         f"and {tuple(item_seq_len.shape)}")  # fmt: skip


def _count(rate, item_seq_len):
    """floor(rate * n) per row, [B] long; computed in float64 so that it equals Python's math.floor(rate * n)."""
    return torch.floor(rate * item_seq_len.double()).long()


def _offset(item_seq_len, k, generator):
    """A uniform random offset in [0, n - k] per row, [B] long."""
    u = torch.rand(item_seq_len.shape, generator=generator, device=item_seq_len.device, dtype=torch.float64)
    span = (item_seq_len - k + 1).clamp(min=1)
    return torch.minimum(torch.floor(u * span).long(), span - 1)


def item_mask(item_seq, item_seq_len, rate, mask_id, generator=None):
    """Mask: replace exactly floor(rate * n) of the n items of each row, chosen uniformly without replacement,
    by `mask_id` (the [MASK] token, `n_items` in the models).

    Args:
        item_seq (torch.LongTensor): [B L] left-aligned item ids.
        item_seq_len (torch.LongTensor): [B] lengths.
        rate (float): share of the items to mask, in [0, 1].
        mask_id (int): id written at the masked positions.
        generator (torch.Generator, optional): source of randomness.

    Returns:
        tuple of torch.LongTensor: the masked sequences [B L] and a copy of the lengths [B].
    """
    _check(item_seq, item_seq_len)
    if not 0 <= rate <= 1:
        raise ValueError(f"mask rate must be in [0, 1], got {rate!r}")
    positions = torch.arange(item_seq.shape[1], device=item_seq.device)  # [L]
    valid = positions < item_seq_len[:, None]  # [B L]
    keys = torch.rand(item_seq.shape, generator=generator, device=item_seq.device)  # [B L]
    keys = keys.masked_fill(~valid, 2.0)  # padding sorts after every item
    ranks = keys.argsort(dim=1, stable=True).argsort(dim=1)  # [B L], the items of a row get ranks 0..n-1
    masked = ranks < _count(rate, item_seq_len)[:, None]  # [B L]
    return item_seq.masked_fill(masked, mask_id), item_seq_len.clone()


def crop(item_seq, item_seq_len, ratio, generator=None):
    """Crop: keep the contiguous run of k = max(1, floor(ratio * n)) items that starts at a uniform random offset
    in [0, n - k], moved to the front (left-aligned, zero padding after it).

    Args:
        item_seq (torch.LongTensor): [B L] left-aligned item ids.
        item_seq_len (torch.LongTensor): [B] lengths.
        ratio (float): share of the items to keep, in (0, 1].
        generator (torch.Generator, optional): source of randomness.

    Returns:
        tuple of torch.LongTensor: the cropped sequences [B L] and their lengths k [B].
    """
    _check(item_seq, item_seq_len)
    if not 0 < ratio <= 1:
        raise ValueError(f"crop ratio must be in (0, 1], got {ratio!r}")
    k = torch.minimum(_count(ratio, item_seq_len).clamp(min=1), item_seq_len)  # [B]
    offset = _offset(item_seq_len, k, generator)  # [B]
    positions = torch.arange(item_seq.shape[1], device=item_seq.device)  # [L]
    source = (offset[:, None] + positions).clamp(max=item_seq.shape[1] - 1)  # [B L]
    kept = torch.gather(item_seq, 1, source)  # [B L]
    return kept.masked_fill(positions >= k[:, None], 0), k


def reorder(item_seq, item_seq_len, ratio, generator=None):
    """Reorder: shuffle (uniform random permutation) the contiguous window of k = floor(ratio * n) items that
    starts at a uniform random offset in [0, n - k]; every other position is unchanged.

    Args:
        item_seq (torch.LongTensor): [B L] left-aligned item ids.
        item_seq_len (torch.LongTensor): [B] lengths.
        ratio (float): share of the items to shuffle, in [0, 1].
        generator (torch.Generator, optional): source of randomness.

    Returns:
        tuple of torch.LongTensor: the reordered sequences [B L] and a copy of the lengths [B].
    """
    _check(item_seq, item_seq_len)
    if not 0 <= ratio <= 1:
        raise ValueError(f"reorder ratio must be in [0, 1], got {ratio!r}")
    k = _count(ratio, item_seq_len)  # [B]
    offset = _offset(item_seq_len, k, generator)[:, None]  # [B 1]
    positions = torch.arange(item_seq.shape[1], device=item_seq.device)  # [L]
    keys = torch.rand(item_seq.shape, generator=generator, device=item_seq.device)  # [B L], in [0, 1)
    keys = torch.where(positions < offset, -1.0, torch.where(positions < offset + k[:, None], keys, 2.0))
    order = keys.argsort(dim=1, stable=True)  # [B L]: before the window, the window shuffled, after it
    return torch.gather(item_seq, 1, order), item_seq_len.clone()


def dropout(item_seq, item_seq_len, generator=None):
    """Dropout view: copies of the inputs (the two views then differ only through the encoder's dropout).

    Returns:
        tuple of torch.LongTensor: copies of `item_seq` [B L] and `item_seq_len` [B].
    """
    _check(item_seq, item_seq_len)
    return item_seq.clone(), item_seq_len.clone()


AUGMENTATIONS = {"mask": item_mask, "crop": crop, "reorder": reorder, "dropout": dropout}

# name -> (lowest rate, whether it is allowed, highest rate); None: the operation takes no rate
RATE_RANGES = {"mask": (0.0, True, 1.0), "crop": (0.0, False, 1.0), "reorder": (0.0, True, 1.0), "dropout": None}


def _interval(name):
    low, closed, high = RATE_RANGES[name]
    return f"{'[' if closed else '('}{low:g}, {high:g}]"


def _parse_entry(entry):
    """One config entry -> (name, rate or None); ConfigError naming the entry if it is not valid."""
    known = ", ".join(AUGMENTATIONS)
    if isinstance(entry, str):
        name, rate = entry, None
    elif isinstance(entry, dict) and len(entry) == 1:
        ((name, rate),) = entry.items()
    else:
        raise ConfigError(f"augmentation entry {entry!r} must be a name or a one-key mapping name: rate")
    if name not in AUGMENTATIONS:
        raise ConfigError(f"unknown augmentation {name!r} in {entry!r}; known: {known}")
    if RATE_RANGES[name] is None:
        if rate is not None:
            raise ConfigError(f"augmentation {name!r} takes no rate, got {entry!r}; write it as just {name!r}")
        return name, None
    if rate is None:
        raise ConfigError(f"augmentation {name!r} needs a rate in {_interval(name)}, e.g. {{{name!r}: 0.5}}")
    low, closed, high = RATE_RANGES[name]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (
        (low <= rate if closed else low < rate) and rate <= high
    ):
        raise ConfigError(f"augmentation {name!r} rate must be a number in {_interval(name)}, got {entry!r}")
    return name, float(rate)


class Augmenter:
    """One augmentation per row, drawn uniformly from a list (`__call__`), or two distinct ones for the two views
    of each row (`pair`, CL4SRec's scheme).

    Args:
        augmentations (list): the config value, entries either a name (``"dropout"``) or a one-key mapping
            name -> rate (``{"crop": 0.6}``, ``{"mask": 0.3}``, ``{"reorder": 0.6}``). An entry listed twice is
            drawn twice as often.
        mask_id (int, optional): the [MASK] token id (`n_items`), needed when ``mask`` is listed.

    Raises:
        ConfigError: a non-list or empty value, an unknown name, a missing, unexpected or out-of-range rate.
    """

    def __init__(self, augmentations, mask_id=None):
        if not isinstance(augmentations, (list, tuple)):
            raise ConfigError(f"augmentations must be a list of names or name: rate mappings, got {augmentations!r}")
        if not augmentations:
            raise ConfigError(f"augmentations is empty; list at least one of: {', '.join(AUGMENTATIONS)}")
        self.ops = tuple(_parse_entry(entry) for entry in augmentations)  # ((name, rate or None), ...)
        if mask_id is None and any(name == "mask" for name, _ in self.ops):
            raise ValueError("the mask augmentation needs mask_id (the [MASK] token id, n_items)")
        self.mask_id = mask_id

    @property
    def names(self):
        """The operations as strings, e.g. ``['crop(0.6)', 'mask(0.3)', 'dropout']``."""
        return [name if rate is None else f"{name}({rate:g})" for name, rate in self.ops]

    def __repr__(self):
        return f"Augmenter([{', '.join(self.names)}])"

    def apply(self, index, item_seq, item_seq_len, generator=None):
        """Operation `index` of the list on the whole batch. Returns (seq [B L], len [B])."""
        name, rate = self.ops[index]
        if name == "mask":
            return item_mask(item_seq, item_seq_len, rate, self.mask_id, generator)
        if name == "dropout":
            return dropout(item_seq, item_seq_len)
        return AUGMENTATIONS[name](item_seq, item_seq_len, rate, generator)

    def __call__(self, item_seq, item_seq_len, generator=None):
        """Augment each row with one operation drawn uniformly from the list.

        The choices [B] are drawn first, then every operation runs on the whole batch in list order with the same
        generator, and each row takes the result of its own choice.

        Args:
            item_seq (torch.LongTensor): [B L] left-aligned item ids.
            item_seq_len (torch.LongTensor): [B] lengths.
            generator (torch.Generator, optional): source of randomness.

        Returns:
            tuple of torch.LongTensor: the augmented sequences [B L] and their lengths [B].
        """
        _check(item_seq, item_seq_len)
        choice = torch.randint(len(self.ops), item_seq_len.shape, generator=generator, device=item_seq.device)  # [B]
        return self._by_choice(choice, item_seq, item_seq_len, generator)

    def pair(self, item_seq, item_seq_len, generator=None):
        """Two views of each row made by two distinct operations of the list (CL4SRec's scheme: two operations
        sampled from the set without replacement), e.g. crop for one view and mask for the other.

        Per row, the ordered pair of list entries (first, second) is drawn uniformly among the pairs of distinct
        entries (an entry listed twice counts as two entries); with a one-entry list both views use that entry
        (each with its own randomness). The choices are drawn first (`pair_choices`: the first view's entry, then
        a shift in [1, n - 1] to the second's), then each view is made as in `__call__`: every operation on the
        whole batch in list order, the first view's before the second's, all from the same generator.

        Args:
            item_seq (torch.LongTensor): [B L] left-aligned item ids.
            item_seq_len (torch.LongTensor): [B] lengths.
            generator (torch.Generator, optional): source of randomness.

        Returns:
            tuple: ((seq [B L], len [B]) of the first view, (seq [B L], len [B]) of the second view).
        """
        _check(item_seq, item_seq_len)
        first, second = self.pair_choices(item_seq_len, generator)
        return (
            self._by_choice(first, item_seq, item_seq_len, generator),
            self._by_choice(second, item_seq, item_seq_len, generator),
        )

    def pair_choices(self, item_seq_len, generator=None):
        """The list indices [B], [B] of the two views' operations, distinct per row (equal for a one-entry list)."""
        n_ops, shape, device = len(self.ops), item_seq_len.shape, item_seq_len.device
        first = torch.randint(n_ops, shape, generator=generator, device=device)  # [B]
        if n_ops == 1:
            return first, first.clone()
        shift = torch.randint(1, n_ops, shape, generator=generator, device=device)  # [B], in [1, n_ops - 1]
        return first, (first + shift) % n_ops

    def _by_choice(self, choice, item_seq, item_seq_len, generator):
        """Every operation on the whole batch in list order; row b takes the result of operation choice[b]."""
        out_seq, out_len = None, None
        for index in range(len(self.ops)):
            seq, length = self.apply(index, item_seq, item_seq_len, generator)
            if out_seq is None:
                out_seq, out_len = seq, length  # new tensors; rows of other choices are overwritten below
            else:
                chosen = choice == index  # [B]
                out_seq = torch.where(chosen[:, None], seq, out_seq)
                out_len = torch.where(chosen, length, out_len)
        return out_seq, out_len
