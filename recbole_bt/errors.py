"""The user mistakes recbole_bt reports in one line (no RecBole traceback), and the numerical failures of a run
(a non-finite training loss or evaluation score) that stop it.

All of them are `ValueError`s, so code written against RecBole's own exceptions keeps working.
`run_recbole_bt.py` prints `error: <message>` for any of them and exits with status 2.
"""


class RecBoleBTError(ValueError):
    """Base class: a mistake in what the user asked for, explained in one line."""


class ModelNotFoundError(RecBoleBTError):
    """No model of that name in recbole_bt or RecBole."""


class DatasetNotFoundError(RecBoleBTError):
    """The dataset's atomic files are not on disk and cannot be downloaded."""


class ConfigError(RecBoleBTError):
    """A config file that is missing or does not parse, or a config value that cannot be used."""


class CheckpointError(RecBoleBTError):
    """A checkpoint file that is missing, not a RecBole checkpoint, or does not fit the model."""


class NonFiniteLossError(RecBoleBTError):
    """The training loss of a batch is NaN or infinite; the message names the loss terms that are."""


class NonFiniteScoreError(RecBoleBTError):
    """The model scored evaluated users NaN or +inf (or -inf on their target item): no ranking metric is valid."""


class DegenerateDataError(RecBoleBTError):
    """A dataset that the configured run cannot train or evaluate on: no training rows, an empty validation or test
    set, or a catalog smaller than the ranking cut-off."""
