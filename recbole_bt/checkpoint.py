"""Reading a RecBole checkpoint and checking that it fits a model: the one place resume (`resume_file`),
fine-tuning and warm starts (`pre_model_path`), `load_data_and_model` and user tasks go through, so that a missing,
foreign or misshapen file is the same one-line `CheckpointError` wherever it is named.
"""
from recbole_bt.compat import load_checkpoint
from recbole_bt.errors import CheckpointError


def read_checkpoint(path, key="checkpoint", hint=""):
    """The dict RecBole's trainer saves (with 'config' and 'state_dict'); anything else is a CheckpointError.
    `key` names the file in the message (the config key that gave it), `hint` says which file to pass instead."""
    named = f"{key} '{path}'"
    try:
        checkpoint = load_checkpoint(path)
    except FileNotFoundError:
        raise CheckpointError(f"{named} not found{hint}") from None
    except Exception as e:  # not a torch file at all
        raise CheckpointError(f"{named} is not a RecBole checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(checkpoint, dict) or not {"config", "state_dict"} <= set(checkpoint):
        raise CheckpointError(f"{named} is not a RecBole checkpoint (no 'config' and 'state_dict' in it)")
    return checkpoint


def check_resumable(checkpoint, config, state, resume_file):
    """A checkpoint to resume from: saved by a run of the same model, dataset and train stage, with its
    validation state, and weights of the shapes of `state` (the model's state_dict)."""
    saved = checkpoint["config"]
    for key, what in (("model", "model"), ("dataset", "dataset"), ("train_stage", "train_stage")):
        if saved[key] != config[key]:
            raise CheckpointError(
                f"cannot resume {config['model']} from '{resume_file}': its {what} is {saved[key]}, "
                f"this run's is {config[key]}"
            )
    if "best_valid_score" not in checkpoint:
        raise CheckpointError(
            f"cannot resume from '{resume_file}': it holds no validation state (a pretraining checkpoint: "
            f"fine-tune from it with pre_model_path; a pretraining run resumes from its *-pretrain-last.pth, "
            f"saved with checkpoint_last: True)"
        )
    problems = shape_problems(state, checkpoint["state_dict"])
    if problems:
        raise CheckpointError(
            f"cannot resume {config['model']} from '{resume_file}': its weights do not fit this config "
            f"({summarise(problems)}); resume with the checkpoint's settings"
        )


def check_pretrained(checkpoint, path, name, pretraining_models):
    """A checkpoint to fine-tune `name` from: saved by one of `pretraining_models` (names)."""
    source = saved_setting(checkpoint, "model", "an unknown model")
    if source not in pretraining_models:
        raise CheckpointError(
            f"cannot fine-tune {name} from '{path}': it holds a {source} model, not a pretrained sequence "
            f"encoder (the checkpoint of a train_stage: pretrain run of {name} or another pretraining model)"
        )
    return source


def saved_setting(checkpoint, key, default=None):
    """A config value of the run that saved `checkpoint` (`default` when its config has no such key)."""
    try:
        return checkpoint["config"][key]
    except KeyError:
        return default


def shape_problems(own, theirs):
    """What keeps the tensors `theirs` (a checkpoint's) from loading into `own` (a model's), both {name: tensor},
    one 'name: (shape) in the checkpoint, (shape) here' per name, 'missing' for a tensor only one of them has."""

    def shape(tensor):
        return "missing" if tensor is None else tuple(tensor.shape)

    names = list(own) + [name for name in theirs if name not in own]
    return [
        f"{name}: {shape(theirs.get(name))} in the checkpoint, {shape(own.get(name))} here"
        for name in names
        if name not in own or name not in theirs or own[name].shape != theirs[name].shape
    ]


def summarise(problems):
    """The first problem of `shape_problems`, and how many more there are."""
    more = len(problems) - 1
    return problems[0] + (f" and {more} more" if more > 0 else "")
