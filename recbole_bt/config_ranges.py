"""The config keys' ranges (numbers, choices, lists), checked when a `recbole_bt.Config` is built (before any data
loads): the one home of option checks; models read their options unchecked.

`NUMERIC_KEYS` is the one table: RecBole's overall keys ("*", every model), the SASRec family's and each recbole_bt
model's, following the `# (type) meaning. Range` comments of the YAML files; a model's ``loss_types`` attribute
gives its ``loss_type`` choices. A value of the wrong type, NaN, infinite or out of range is a one-line
`ConfigError` naming the key, the value and the range.
"""
import inspect
import math
import numbers
import re

from recbole_bt.errors import ConfigError
from recbole_bt.loss import BT_SCALES, SIMILARITIES
from recbole_bt.model.btsrec import MIN_BT_ROWS
from recbole_bt.model.duorec import CONTRASTS
from recbole_bt.model.pretrain import TRAIN_STAGES, USER_TOKENS

FLOAT32_LIMIT = 1e30  # torch computes in float32: a float key beyond 1e30 (or nonzero below 1e-30) over/underflows
INT_LIMIT = 2**31 - 1  # an integer key beyond it is no count of anything (and overflows islice, numpy, torch)


class Range:
    """The values a numeric config key takes: integers or finite numbers (`kind` int or float) in an interval
    written as in mathematics, e.g. ``Range(int, "[1, inf)")``, ``Range(float, "[0, 1)")``; ``none=True`` also
    accepts ~ (None); ``why`` is said after the range. An integer key takes an integral float (``1e3``, hyperopt's
    ``64.0``) as that integer."""

    _INTERVAL = re.compile(r"^([\[(])\s*([^,\s]+)\s*,\s*([^\])\s]+)\s*([\])])$")

    def __init__(self, kind, interval, none=False, why=None):
        match = self._INTERVAL.match(interval)
        if kind not in (int, float) or match is None:
            raise ValueError(f"Range({kind!r}, {interval!r}): kind int or float and an interval like '[0, inf)'")
        self.kind, self.interval, self.none, self.why = kind, interval, none, why
        self.low, self.high = float(match[2]), float(match[3])
        self.low_open, self.high_open = match[1] == "(", match[4] == ")"

    def __repr__(self):
        return f"Range({self.kind.__name__}, {self.interval!r}{', none=True' if self.none else ''})"

    def describe(self):
        kind = "an integer" if self.kind is int else "a finite number"
        return f"{kind} in {self.interval}" + (" or ~" if self.none else "")

    def check(self, key, value):
        """`value` as the key's type (an integral float becomes an int), else a one-line `ConfigError`."""
        if value is None and self.none:
            return None
        number = self._number(value)
        if number is None or not self._contains(number):
            why = f" ({self.why})" if self.why else ""
            raise ConfigError(f"'{key}' must be {self.describe()}{why}, got {_short_repr(value)}")
        if self.kind is float and number != 0 and not 1 / FLOAT32_LIMIT <= abs(number) <= FLOAT32_LIMIT:
            raise ConfigError(
                f"'{key}' must be {self.describe()} with a magnitude in [1e-30, 1e30] (torch computes in float32), "
                f"got {_short_repr(value)}"
            )
        if self.kind is int and self.high == math.inf and number > INT_LIMIT:
            raise ConfigError(f"'{key}' must be {self.describe()} and at most {INT_LIMIT}, got {_short_repr(value)}")
        return number

    def _number(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return None
        if isinstance(value, numbers.Integral):
            return int(value)
        if not math.isfinite(value):
            return None
        if self.kind is int:
            return int(value) if float(value).is_integer() else None
        return value

    def _contains(self, x):
        above = x > self.low if self.low_open else x >= self.low
        below = x < self.high if self.high_open else x <= self.high
        return above and below


class Choice:
    """The values a categorical config key takes, e.g. ``Choice("fp32", "bf16")``, ``Choice(True, False, None)``
    (None written ~). A bool key takes only True or False (not 1, 0 or a string)."""

    def __init__(self, *values):
        self.values = values

    def __repr__(self):
        return f"Choice{self.values!r}"

    def describe(self):
        return "one of [" + ", ".join("~" if v is None else repr(v) for v in self.values) + "]"

    def check(self, key, value):
        if not any(value is v or (type(value) is type(v) and value == v) for v in self.values):
            raise ConfigError(f"'{key}' must be {self.describe()}, got {_short_repr(value)}")
        return value


class Several:
    """A list of `length` values (None: any number from 1 on), each in `item` (a `Range` or `Choice`), e.g. Adam's
    betas: ``Several(Range(float, "[0, 1)"), 2)``; ``none=True`` also accepts ~ (None); `what` names the values."""

    def __init__(self, item, length=None, none=False, what="values"):
        self.item, self.length, self.none, self.what = item, length, none, what

    def __repr__(self):
        return f"Several({self.item!r}, {self.length}{', none=True' if self.none else ''})"

    def describe(self):
        count = f"a list of {self.length}" if self.length else "a non-empty list of"
        return f"{count} {self.what}, each {self.item.describe()}" + (", or ~" if self.none else "")

    def check(self, key, value):
        if value is None and self.none:
            return None
        if not isinstance(value, (list, tuple)) or not value or (self.length and len(value) != self.length):
            raise ConfigError(f"'{key}' must be {self.describe()}, got {_short_repr(value)}")
        try:
            return [self.item.check(key, v) for v in value]
        except ConfigError:
            raise ConfigError(f"'{key}' must be {self.describe()}, got {_short_repr(value)}") from None


def sizes(none=False):
    """Layer sizes: a non-empty list of integers in [1, 65536] (``none=True``: or ~, no layers)."""
    return Several(Range(int, _SIZE), none=none, what="layer sizes")


_SIZE = "[1, 65536]"  # widths, lengths, counts of rows: a sanity cap (beyond it nothing fits in memory)

# The numeric keys checked when a Config is built, by the model class whose YAML declares them: "*" holds RecBole's
# overall keys (every model), a class name the keys of that class and its subclasses (a subclass's entry wins).
# Ranges follow the `# (type) meaning. Range` comments of the YAML files; n_heads must also divide hidden_size.
NUMERIC_KEYS = {
    "*": {
        "seed": Range(int, "[0, 4294967295]"),  # numpy's seeds
        "worker": Range(int, "[0, 1024]"),
        "epochs": Range(int, "[0, inf)"),
        "train_batch_size": Range(int, "[1, inf)"),
        "eval_batch_size": Range(int, "[1, inf)"),
        "learning_rate": Range(float, "[0, inf)"),  # 0 freezes the weights
        "weight_decay": Range(float, "[0, inf)"),
        "eval_step": Range(int, "[0, inf)"),  # 0 = no validation
        "stopping_step": Range(int, "[0, inf)"),
        "loss_decimal_place": Range(int, "[0, 16]"),
        "metric_decimal_place": Range(int, "[0, 16]"),
        "MAX_ITEM_LIST_LENGTH": Range(int, _SIZE),
        "precision": Choice("fp32", "bf16"),  # recbole_bt's overall.yaml (speed, issue 16)
        "length_bucketing": Choice(True, False, None),
        "eval_mask_seen": Choice(True, False),  # recbole_bt's overall.yaml (protocol, issue 17)
        "lr_warmup_epochs": Range(float, "[0, inf)"),
        "lr_decay": Choice("none", "cosine"),
        "adam_betas": Several(Range(float, "[0, 1)"), 2, none=True),  # recbole_bt's overall.yaml (issue 18)
        "gts_test_history": Choice("full", "post_cut"),
        "train_windows": Choice("all", "last"),
        "row_builder": Choice("interactions", "prefix_rows"),  # recbole_bt's overall.yaml (scale, issue 21)
        "memory_check": Choice(True, False),
        "gts_exclude_test_users": Choice(True, False),
        "checkpoint_last": Choice(True, False),  # recbole_bt's overall.yaml (resume per epoch, issue 19)
        "test_per_user": Choice(True, False),
    },
    "SASRec": {  # RecBole's SASRec.yaml, then recbole_bt's
        "n_layers": Range(int, "[1, 1024]"),
        "n_heads": Range(int, _SIZE),
        "hidden_size": Range(int, _SIZE),
        "inner_size": Range(int, _SIZE),
        "hidden_dropout_prob": Range(float, "[0, 1)"),
        "attn_dropout_prob": Range(float, "[0, 1)"),
        "layer_norm_eps": Range(float, "(0, inf)"),
        "initializer_range": Range(float, "[0, 1]"),  # standard deviation of the normal initialisation
        "train_neg_sample_num": Range(int, _SIZE),
        "n_buckets": Range(int, _SIZE, none=True),
        "bucket_size_x": Range(int, _SIZE, none=True),
        "bucket_size_y": Range(int, _SIZE),  # the model also refuses more than the catalog's items
        "fused_attention": Choice(True, False, None),
        "fused_ce": Choice(True, False, None),
        "fused_last_position": Choice(True, False, None),
        "sce_reduction": Choice("max", "union"),
    },
    "BTSRec": {
        "alpha": Range(float, "[0, inf)"),
        "lambda": Range(float, "[0, inf)"),
        "bt_scale": Choice(*BT_SCALES),
        "bt_projector": sizes(none=True),
        "partner_chunk_rows": Range(int, "[0, 65536]"),
        "train_batch_size": Range(int, f"[{MIN_BT_ROWS}, inf)", why="too small for Barlow Twins: a batch of 2 standardises to +-1/sqrt(2) whatever the rows, no gradient"),
    },
    "CL4SRec": {"lmd": Range(float, "[0, inf)"), "tau": Range(float, "(0, inf)"), "sim": Choice(*SIMILARITIES)},
    "DuoRec": {"lmd": Range(float, "[0, inf)"), "tau": Range(float, "(0, inf)"), "sim": Choice(*SIMILARITIES),
               "contrast": Choice(*CONTRASTS), "partner_chunk_rows": Range(int, "[0, 65536]")},
    "SequencePretrainer": {
        "train_stage": Choice(*TRAIN_STAGES),
        "user_token": Choice(*USER_TOKENS),
        "pretrain_epochs": Range(int, "[1, inf)"),
        "pretrain_stopping_step": Range(int, "[0, inf)"),
        "pretrain_min_delta": Range(float, "[0, 1)"),
        "save_step": Range(int, "[1, inf)"),
        "probe_epochs": Range(int, "[1, inf)"),
        "probe_learning_rate": Range(float, "[0, inf)"),
        "probe_weight_decay": Range(float, "[0, inf)"),
        "task_epochs": Range(int, "[1, inf)"),
        "task_batch_size": Range(int, "[1, inf)"),
        "user_task_stopping_step": Range(int, "[1, inf)"),
        "user_task_keep_start": Choice(True, False),
        "user_task_head_start": Choice("random", "prior"),
    },
    "CLUE": {"predictor_hidden": Range(int, _SIZE), "projector_sizes": sizes()},
    "DualEncoder": {"temperature": Range(float, "(0, inf)")},
    "BTPretrain": {
        "lambda": Range(float, "[0, inf)", none=True),  # ~ = 1 / projector output size
        "projector_sizes": sizes(),
        "bt_scale": Choice(*BT_SCALES),
    },
}


# Keys whose package default depends on train_mode: ~ in properties/model/SASRec.yaml, CL4SRec.yaml, DuoRec.yaml (or a
# dataset YAML) means (all_positions value, prefix value). all_positions: the SASRec-family recipe chosen on ML-1M validation
# (benchmarks/RESULTS.md, "SASRec at convergence under the papers' protocol"; SASRec+'s); prefix: RecBole's own SASRec / overall defaults.
TRAIN_MODE_DEFAULTS = {
    "MAX_ITEM_LIST_LENGTH": (200, 50),
    "train_batch_size": (128, 2048),
    "n_heads": (1, 2),
    "hidden_dropout_prob": (0.1, 0.5),
    "attn_dropout_prob": (0.1, 0.5),
    "epochs": (100, 300),  # SASRec+'s budget (early stopping ends runs sooner); RecBole's 300
    # CL4SRec's and DuoRec's contrastive weight: all_positions chosen on validation (issue 19's selection,
    # benchmarks/RESULTS.md "Contrastive weights chosen on validation"); prefix: the papers' (one target per row)
    "lmd": (0.001, 0.1),
}


# Speed options (same results, other kernels): ~ means on in train_mode all_positions and off in prefix (where the
# SASRec family is RecBole's SASRec, exactly).
SPEED_KEYS = ("fused_attention", "fused_ce", "length_bucketing")


def resolve_train_mode_defaults(final):
    """Replace ~ in the keys of `TRAIN_MODE_DEFAULTS` and `SPEED_KEYS` by the train_mode's value (in the final
    config dict), so that models and dataloaders read plain values."""
    all_positions = final.get("train_mode") == "all_positions"
    for key, (ours, recbole) in TRAIN_MODE_DEFAULTS.items():
        if key in final and final[key] is None:
            final[key] = ours if all_positions else recbole
    for key in SPEED_KEYS:
        if key in final and final[key] is None:
            final[key] = all_positions
    if final.get("fused_last_position", False) is None:  # a part of the fused path: on with it
        final["fused_last_position"] = bool(final.get("fused_attention"))


def numeric_ranges(model_class):
    """{key: Range} of the numeric keys that apply to `model_class` (see `NUMERIC_KEYS`)."""
    ranges = dict(NUMERIC_KEYS["*"])
    for cls in reversed(inspect.getmro(model_class) if inspect.isclass(model_class) else ()):
        ranges.update(NUMERIC_KEYS.get(cls.__name__, {}))
    if getattr(model_class, "loss_types", None) is not None:
        ranges["loss_type"] = Choice(*model_class.loss_types)
    return ranges


def _short_repr(value, limit=60):
    text = repr(value)
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    plain_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return text if plain_number else f"{text} ({type(value).__name__})"
