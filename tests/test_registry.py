"""Model and trainer lookup: recbole_bt's own models first, RecBole's built-ins second, clear unknown names."""
import pytest
import recbole.trainer
from recbole.model.sequential_recommender import SASRec
from recbole.utils import ModelType

import recbole_bt.model
import recbole_bt.trainer
from recbole_bt.trainer import EvaluationMixin, with_evaluation
from recbole_bt import ModelNotFoundError, get_model, get_trainer, register_model
from recbole_bt.registry import model_names, unregister_model
from toy_model import MeanPoolRec, MeanPoolRecWithTrainer


@pytest.fixture
def registered():
    names = []

    def register(cls, name=None):
        register_model(cls, name)
        names.append(name or cls.__name__)

    yield register
    for name in names:
        unregister_model(name)


def test_recbole_builtin_is_found():
    from recbole.model.sequential_recommender import GRU4Rec

    assert get_model("GRU4Rec") is GRU4Rec
    assert "GRU4Rec" in model_names() and "BERT4Rec" in model_names()


def test_package_sasrec_extends_recboles():
    assert get_model("SASRec") is recbole_bt.model.SASRec and issubclass(get_model("SASRec"), SASRec)


def test_package_models_come_first(registered, monkeypatch):
    monkeypatch.setattr(recbole_bt.model, "MeanPoolRec", MeanPoolRec, raising=False)
    assert get_model("MeanPoolRec") is MeanPoolRec
    ours = model_names()[: len(recbole_bt.registry.package_models())]
    assert "MeanPoolRec" in ours and "BTSRec" in ours  # the package's models are listed before RecBole's
    registered(MeanPoolRec, name="SASRec")  # a package model shadows RecBole's of the same name
    assert get_model("SASRec") is MeanPoolRec


def test_register_model_rejects_non_models():
    with pytest.raises(TypeError, match="RecBole model class"):
        register_model(dict)


@pytest.mark.parametrize(
    "name, suggestion",
    [("SASRc", "SASRec"), ("sasrec", "SASRec"), ("Bert4Rec", "BERT4Rec"), ("GRU4Recc", "GRU4Rec")],
)
def test_unknown_model_lists_close_matches(name, suggestion):
    with pytest.raises(ModelNotFoundError) as info:
        get_model(name)
    message = str(info.value)
    assert message.startswith(f"unknown model '{name}': did you mean ")
    assert suggestion in message.split("did you mean ")[1].split("?")[0]
    assert "\n" not in message


def test_unknown_model_without_close_match_lists_what_exists():
    with pytest.raises(ModelNotFoundError, match=r"unknown model 'Zzzzzz': recbole_bt models: .*RecBole's \d+ built-ins"):
        get_model("Zzzzzz")


def test_trainer_recbole_default_and_recbole_named():
    """RecBole's trainers, with recbole_bt's evaluation in front (the new metrics work for every model)."""
    assert get_trainer(ModelType.SEQUENTIAL, "SASRec") is recbole_bt.trainer.Trainer
    assert recbole_bt.trainer.Trainer.__mro__[1:3] == (EvaluationMixin, recbole.trainer.Trainer)
    s3rec = get_trainer(ModelType.SEQUENTIAL, "S3Rec")  # RecBole's, by name
    assert s3rec.__mro__[1:3] == (EvaluationMixin, recbole.trainer.S3RecTrainer)
    assert get_trainer(ModelType.SEQUENTIAL, "S3Rec") is s3rec  # one class per RecBole trainer
    assert with_evaluation(recbole.trainer.DecisionTreeTrainer) is recbole.trainer.DecisionTreeTrainer  # no Trainer


def test_model_names_its_own_trainer(registered):
    registered(MeanPoolRecWithTrainer)
    assert get_trainer(ModelType.SEQUENTIAL, "MeanPoolRecWithTrainer").__mro__[2] is recbole.trainer.KGTrainer

    class WithTrainerClass(MeanPoolRec):
        trainer_class = recbole.trainer.PretrainTrainer

    registered(WithTrainerClass)
    assert get_trainer(ModelType.SEQUENTIAL, "WithTrainerClass").__mro__[2] is recbole.trainer.PretrainTrainer

    class WithBadTrainer(MeanPoolRec):
        trainer_class = "NoSuchTrainer"

    registered(WithBadTrainer)
    with pytest.raises(ModelNotFoundError, match="NoSuchTrainer"):
        get_trainer(ModelType.SEQUENTIAL, "WithBadTrainer")
