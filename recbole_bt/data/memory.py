"""The memory a run's data and evaluation need, checked against what the machine has before they are allocated.

A run that needs more memory than the machine has is otherwise killed by the kernel minutes later, mid-way
through RecBole's prefix rows (an [interactions, MAX_ITEM_LIST_LENGTH] tensor per list field: 32 GB of item ids
for MovieLens-20M at L 200). With `memory_check: True` (the default) recbole_bt estimates, in bytes:

- **table**: the interaction table, as pandas loads it and as RecBole converts it (3 copies of 8-byte columns);
- **rows**: `row_builder: prefix_rows` or `train_mode: prefix`, RecBole's prefix rows: one [L] list per
  interaction and loaded column (8 bytes for ids, 4 for floats), twice (the split copies them);
  `row_builder: interactions` (rows.py): the training windows (inputs and targets, [L] each) and the validation
  and test rows of the evaluated users;
- **evaluation**: a full-ranking batch, `eval_batch_size` (at most one row per user) x items scores (float32), 3
  times (the scores, their masked copy, the top-k's work);
- **training**: a step's activations, `train_batch_size` x L x (40 x hidden_size + 4 x n_heads x L) floats per
  layer (a rough count of a transformer block's saved tensors), and the [positions, items] logits when `fused_ce`
  is off;

twice: before loading (`check_before_loading`: the interactions counted from the .inter file's lines, the users
and items not yet known, so the terms that need them are left out) and once loaded, before any row is built
(`check_loaded`: exact counts, and the table already in memory). When the estimate exceeds the memory available
(the smallest of /proc/meminfo's MemAvailable, the cgroup's limit and RLIMIT_AS), the run stops with one line that
says so and which setting would fit.
"""
import os
import resource

from recbole.utils import ModelType

from recbole_bt.errors import ConfigError

GIB = 2**30


def available_bytes():
    """The memory this process may still allocate: MemAvailable, the cgroup's limit less its usage, RLIMIT_AS
    less the address space in use; None where none is known."""
    limits = []
    meminfo = _read_keys("/proc/meminfo")
    if "MemAvailable" in meminfo:
        limits.append(meminfo["MemAvailable"])
    cgroup_max, cgroup_used = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
    if cgroup_max is not None and cgroup_used is not None:
        limits.append(cgroup_max - cgroup_used)
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    vm_size = _read_keys("/proc/self/status").get("VmSize")
    if soft != resource.RLIM_INFINITY and vm_size is not None:
        limits.append(soft - vm_size)
    return min(limits) if limits else None


def _read_keys(path):
    """`Key: value kB` lines of a /proc file as {key: bytes}."""
    values = {}
    try:
        with open(path) as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
                    values[key] = int(parts[0]) * 1024
    except OSError:
        pass
    return values


def _read_int(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def count_lines(path, chunk=2**24):
    """Data lines of an atomic file (lines after the header), counted without parsing them."""
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(chunk):
            lines += block.count(b"\n")
            last = block[-1:]
    return max(lines + (last != b"\n") - 1, 0)


def estimate(config, interactions, columns, float_columns=0, users=None, items=None, table=True):
    """{term: bytes} of a run of `config` on `interactions` rows of `columns` loaded columns (`float_columns` of them
    float); a term that needs the `users` or `items` count is left out while it is None, and the table when
    `table` is False (already loaded)."""
    length, sequential = config["MAX_ITEM_LIST_LENGTH"] or 50, config["MODEL_TYPE"] == ModelType.SEQUENTIAL
    terms = {}
    if table:
        terms["table"] = 3 * 8 * interactions * columns
    if sequential:
        if uses_prefix_rows(config):
            list_bytes = 8 * (columns - 1 - float_columns) + 4 * float_columns  # every column but the user's
            terms["rows"] = 2 * interactions * length * list_bytes
        elif users is not None:
            stride = config["train_stride"] or length
            windows = users if config["train_windows"] == "last" else interactions // stride + users
            terms["rows"] = 8 * length * (2 * windows + 2 * users)
    if items is not None:
        rows = config["eval_batch_size"] if users is None else min(config["eval_batch_size"], users)  # <= a row/user
        terms["evaluation"] = 3 * 4 * rows * items
        if sequential:  # a batch holds at most every training row
            batch_rows = interactions if uses_prefix_rows(config) or users is None else windows
            terms["training"] = training_bytes(config, length, items, batch_rows)
    return terms


def uses_prefix_rows(config):
    return config["train_mode"] != "all_positions" or config["row_builder"] == "prefix_rows"


def training_bytes(config, length, items, max_rows=None):
    """A training step's activations, roughly (see the module doc), for a batch of at most `max_rows` rows."""
    batch, hidden = min(config["train_batch_size"], max_rows or config["train_batch_size"]), config["hidden_size"] or 64
    layers, heads = config["n_layers"] or 2, config["n_heads"] or 1
    per_layer = batch * length * (40 * hidden + 4 * heads * length)
    positions = length if config["train_mode"] == "all_positions" else 1  # prefix rows: the last position's logits
    logits = 0 if config["fused_ce"] in (None, True) else 2 * batch * positions * items
    return 4 * (layers * per_layer + logits)


def check(config, terms, available=None, when="", items=None):
    """Raise `ConfigError` when the `terms` (from `estimate`, of a catalog of `items`) exceed the memory available."""
    available = available_bytes() if available is None else available
    needed = sum(terms.values())
    if not config["memory_check"] or available is None or needed <= available:
        return
    parts = ", ".join(f"{name} {value / GIB:.1f}" for name, value in terms.items())
    raise ConfigError(
        f"this run needs about {needed / GIB:.1f} GiB{when} ({parts}) and {available / GIB:.1f} GiB is available: "
        f"{_what_fits(config, terms, available, items)}, or memory_check: False to try anyway"
    )


def _what_fits(config, terms, available, items=None):
    """The settings that would bring the estimate under `available`, in words."""
    ways = []
    rest = sum(v for k, v in terms.items() if k not in ("rows", "evaluation", "training"))
    if terms.get("rows") and uses_prefix_rows(config) and config["MAX_ITEM_LIST_LENGTH"]:
        ways.append(
            "row_builder: interactions (no prefix rows)" if config["train_mode"] == "all_positions"
            else "train_mode: all_positions (its rows come from the interaction table, no prefix rows)"
        )  # fmt: skip
    if terms.get("rows") or terms.get("training"):
        per_position = (terms.get("rows", 0) + terms.get("training", 0)) / (config["MAX_ITEM_LIST_LENGTH"] or 1)
        room = available - rest - terms.get("evaluation", 0)
        fits = int(room / per_position) if per_position and room > 0 else 0
        if fits >= 1 and config["MAX_ITEM_LIST_LENGTH"] and fits < config["MAX_ITEM_LIST_LENGTH"]:
            ways.append(f"MAX_ITEM_LIST_LENGTH: {fits}")
    if terms.get("evaluation"):
        room = available - (sum(terms.values()) - terms["evaluation"])
        per_row = 3 * 4 * items if items else terms["evaluation"] / config["eval_batch_size"]
        fits = int(room / per_row) if room > 0 else 0
        if 1 <= fits < config["eval_batch_size"]:
            ways.append(f"eval_batch_size: {fits}")
    return "set " + " or ".join(ways) if ways else "use a machine with more memory or a smaller dataset"


def check_before_loading(config, inter_files):
    """`check` from the .inter files' lines and header, before RecBole loads them (users and items not yet known)."""
    files = [f for f in inter_files if os.path.isfile(f)]
    if not config["memory_check"] or not files:
        return
    columns = loaded_columns(config, files[0])
    floats = sum(kind.startswith("float") for kind in columns.values())
    terms = estimate(config, sum(count_lines(f) for f in files), len(columns), floats)
    check(config, terms, when=" before loading")


def loaded_columns(config, inter_file):
    """{column: type} of the columns RecBole will load from `inter_file` (its header, less what `load_col` leaves
    out)."""
    with open(inter_file, encoding="utf-8") as f:
        header = f.readline().rstrip("\r\n").split(config["field_separator"] or "\t")
    columns = dict(field.split(":", 1) for field in header if ":" in field)
    load_col = config["load_col"]
    if isinstance(load_col, dict) and load_col.get("inter"):
        columns = {name: kind for name, kind in columns.items() if name in load_col["inter"]}
    return columns


def check_loaded(config, dataset):
    """`check` with the dataset's exact counts, before its rows are built (the table loaded: only its conversion
    and sorted copy are still to come)."""
    feat = dataset.inter_feat
    floats = sum("float" in str(feat[c].dtype) for c in feat.columns)
    terms = estimate(config, len(feat), len(feat.columns), floats, dataset.user_num, dataset.item_num, table=False)
    terms = {"table": 2 * 8 * len(feat) * len(feat.columns), **terms}
    check(config, terms, items=dataset.item_num)
