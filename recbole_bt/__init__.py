"""recbole_bt: non-contrastive self-supervised learning for sequential recommendation, as a RecBole plugin.

Importing the package applies the RecBole 1.2.1 compatibility fixes (`recbole_bt.compat`) and registers the
package's metrics with RecBole's evaluator (`recbole_bt.evaluator`: coverage, effective_rank, hit_head/mid/tail).
"""
__version__ = "0.1.0"

from recbole_bt import compat as _compat

_compat.apply()

from recbole_bt.evaluator import register_metrics as _register_metrics  # noqa: E402

_register_metrics()

from recbole_bt.config import Config  # noqa: E402
from recbole_bt.errors import (  # noqa: E402
    CheckpointError,
    ConfigError,
    DatasetNotFoundError,
    DegenerateDataError,
    ModelNotFoundError,
    NonFiniteLossError,
    NonFiniteScoreError,
    RecBoleBTError,
)
from recbole_bt.registry import get_model, get_trainer, register_model  # noqa: E402

__all__ = [
    "__version__",
    "Config",
    "get_model",
    "get_trainer",
    "register_model",
    "RecBoleBTError",
    "ModelNotFoundError",
    "DatasetNotFoundError",
    "ConfigError",
    "CheckpointError",
    "DegenerateDataError",
    "NonFiniteLossError",
    "NonFiniteScoreError",
]
