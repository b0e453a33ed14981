"""Find models and trainers by name: recbole_bt's own first, RecBole's built-ins as the fallback.

- `get_model(name)`: a model registered with `register_model`, then one exported by `recbole_bt.model`,
  then RecBole's `recbole.utils.get_model`. An unknown name is a `ModelNotFoundError` with the close matches.
- `get_trainer(model_type, model_name)`: the model's own `trainer_class` attribute (a class, or the name of one
  in `recbole_bt.trainer` or `recbole.trainer`), then `recbole_bt.trainer.<Model>Trainer`, then RecBole's choice;
  a RecBole trainer gets recbole_bt's evaluation in front (`recbole_bt.trainer.with_evaluation`).
"""
import difflib
import importlib
import inspect

from recbole.model.abstract_recommender import AbstractRecommender

from recbole_bt.errors import ModelNotFoundError
from recbole_bt.trainer import with_evaluation

_RECBOLE_MODEL_SUBMODULES = [
    "general_recommender",
    "context_aware_recommender",
    "sequential_recommender",
    "knowledge_aware_recommender",
    "exlib_recommender",
]

_registered_models = {}


def register_model(model_class, name=None):
    """Make a model class findable by name (e.g. a user's own model). Registered names shadow every other."""
    if not (inspect.isclass(model_class) and issubclass(model_class, AbstractRecommender)):
        raise TypeError(f"register_model expects a RecBole model class, got {model_class!r}")
    _registered_models[name or model_class.__name__] = model_class
    return model_class


def unregister_model(name):
    """Forget a name given to `register_model` (no error if it was not registered)."""
    _registered_models.pop(name, None)


def _model_classes_in(module):
    return {
        name: obj
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, AbstractRecommender) and not name.startswith("_")
    }


def package_models():
    """{name: class} of recbole_bt's own models (registered ones included)."""
    models = _model_classes_in(importlib.import_module("recbole_bt.model"))
    models.update(_registered_models)
    return models


def recbole_model_names():
    """Names of RecBole's built-in models."""
    names = set()
    for submodule in _RECBOLE_MODEL_SUBMODULES:
        try:
            module = importlib.import_module(f"recbole.model.{submodule}")
        except ImportError:  # an optional dependency of that family is missing
            continue
        names.update(
            name
            for name, cls in _model_classes_in(module).items()
            if cls.__module__.startswith(f"recbole.model.{submodule}.")
        )
    return sorted(names)


def model_names():
    """Every model name `get_model` accepts: recbole_bt's first, then RecBole's."""
    ours = sorted(package_models())
    return ours + [name for name in recbole_model_names() if name not in ours]


def get_model(model_name):
    """Return the model class called `model_name`, looking in recbole_bt first and RecBole second."""
    if not isinstance(model_name, str):
        raise ModelNotFoundError(f"a model name must be a string, got {model_name!r}")
    ours = package_models()
    if model_name in ours:
        return ours[model_name]
    if model_name in recbole_model_names():
        from recbole.utils import get_model as recbole_get_model

        return recbole_get_model(model_name)
    raise ModelNotFoundError(_unknown_model_message(model_name))


def _unknown_model_message(model_name):
    names = model_names()
    lowered = {name.lower(): name for name in names}
    close = difflib.get_close_matches(model_name, names, n=5, cutoff=0.6)
    if model_name.lower() in lowered and lowered[model_name.lower()] not in close:
        close.insert(0, lowered[model_name.lower()])
    hint = f"did you mean {', '.join(close)}? " if close else ""
    ours = sorted(package_models())
    return (
        f"unknown model '{model_name}': {hint}"
        f"recbole_bt models: {', '.join(ours) if ours else '(none)'}; "
        f"plus RecBole's {len(names) - len(ours)} built-ins (recbole_bt.registry.model_names() lists all)"
    )


def _trainer_by_name(name):
    for module_name in ("recbole_bt.trainer", "recbole.trainer"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            continue
        if hasattr(module, name):
            return getattr(module, name)
    return None


def get_trainer(model_type, model_name):
    """Return the trainer class for a model: its own `trainer_class`, ours by name, or RecBole's default;
    RecBole trainers come with recbole_bt's evaluation (`recbole_bt.trainer.with_evaluation`)."""
    return with_evaluation(_find_trainer(model_type, model_name))


def _find_trainer(model_type, model_name):
    model_class = get_model(model_name)
    wanted = getattr(model_class, "trainer_class", None)
    if inspect.isclass(wanted):
        return wanted
    if isinstance(wanted, str):
        trainer = _trainer_by_name(wanted)
        if trainer is None:
            raise ModelNotFoundError(
                f"model '{model_name}' names trainer_class '{wanted}', which is neither in "
                f"recbole_bt.trainer nor in recbole.trainer"
            )
        return trainer
    own = importlib.import_module("recbole_bt.trainer")
    if hasattr(own, model_name + "Trainer"):
        return getattr(own, model_name + "Trainer")
    from recbole.utils import get_trainer as recbole_get_trainer

    return recbole_get_trainer(model_type, model_name)
