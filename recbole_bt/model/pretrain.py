r"""
The pretrain -> fine-tune pipeline of user-sequence encoders (CLUE; BTPretrain reuses it), as RecBole's S3Rec
runs it: ``train_stage: pretrain | finetune`` and ``pre_model_path``.

- ``train_stage: pretrain``: the loss is the subclass's `pretrain_loss`, on two views of every training sequence
  (`views`: the ``augmentations`` of `recbole_bt.data.augment`, drawn from the model's own generator, seeded with
  RecBole's ``seed``). `recbole_bt.trainer.PretrainTrainer` logs the loss and the collapse indicators
  (`collapse_indicators`), saves checkpoints every ``save_step`` epochs and at the end, and stops early on the loss.
- ``train_stage: finetune``: the encoder (item and position embeddings, transformer blocks, LayerNorm) is loaded
  from ``pre_model_path`` (another model's checkpoint or another shape is a `CheckpointError` naming both); the
  pretraining heads are not used; the model trains next-item prediction as recbole_bt's SASRec (either
  ``train_mode``) with RecBole's evaluation. No ``pre_model_path``: the same fine-tuning from random weights.
- ``train_stage: user_tasks``: the encoder is loaded as for fine-tuning (none: random weights, "no
  pretraining") and evaluated on the downstream user tasks (`recbole_bt.tasks`: gender, age, next item; linear
  probe and fine-tuning; ``label_ratios``); no next-item training.

User representation ``user_token``: ``UR`` appends a [UR] token after the last item and takes its output
(CLUE); ``last`` takes the last item's output (SASRec). With ``UR``, every position of an all-positions window
gets the [UR] output of its own prefix (`encode`: each [UR] sees the items up to its own, in the two streams of
`recbole_bt.model.ur_stream`), exactly what appending [UR] to each prefix gives. Token ids: [MASK] = n_items,
[UR] = n_items + 1; the item table has two more rows than the catalog, and items are scored against the catalog's
rows only.
"""
from logging import getLogger

import torch
import torch.nn.functional as F
from torch import nn

from recbole_bt.checkpoint import check_pretrained, read_checkpoint, shape_problems, summarise
from recbole_bt.data.augment import Augmenter
from recbole_bt.errors import CheckpointError
from recbole_bt.model.sasrec import SASRec
from recbole_bt.model.mixins import SeededGenerator
from recbole_bt.model.ur_stream import encode_two_streams

TRAIN_STAGES = ("pretrain", "finetune", "user_tasks")
USER_TOKENS = ("UR", "last")
ENCODER_PREFIXES = ("item_embedding.", "position_embedding.", "trm_encoder.", "LayerNorm.")
PRETRAIN_HINT = ": pass the file that a train_stage: pretrain run saved (its log ends with the fine-tuning command)"


class SequencePretrainer(SeededGenerator, SASRec):
    r"""SASRec encoder with a pretraining stage: subclasses define their heads and `pretrain_loss`; `generator`
    (the model's own, seeded with `seed`) comes from `recbole_bt.model.mixins.SeededGenerator`."""

    trainer_class = "PretrainTrainer"
    train_stages = TRAIN_STAGES
    loss_types = ("CE", "BCE", "SCE")  # fine-tuning's next-item loss

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.train_stage = config["train_stage"]
        self.pre_model_path = config["pre_model_path"] or None
        self.user_token = config["user_token"]
        self.init_generator(config)
        self.MASK_ID, self.UR_ID = self.n_items, self.n_items + 1
        self.augmenter = Augmenter(config["augmentations"], mask_id=self.MASK_ID)
        self._projection_spreads = []

        # define layers: the item table with [MASK] and [UR] rows, one more position for [UR] after a full window
        self.item_embedding = nn.Embedding(self.n_items + 2, self.hidden_size, padding_idx=0)
        self.position_embedding = nn.Embedding(self.max_seq_length + 1, self.hidden_size)

    def init_weights(self):
        """RecBole's initialisation of every layer, then, when fine-tuning, the pretrained encoder."""
        self.apply(self._init_weights)
        if self.train_stage != "pretrain" and self.pre_model_path:
            self.load_pretrained_encoder(self.pre_model_path)

    # ------------------------------------------------------------------------------------------- encoder
    def _forward(self, item_seq, item_seq_len):
        """User representation [B H]: the [UR] token's output after the last item, or the last item's."""
        if self.user_token == "last":
            return super()._forward(item_seq, item_seq_len)
        tokens = F.pad(item_seq, (0, 1))  # [B L+1]
        tokens = tokens.scatter(1, item_seq_len.unsqueeze(1), self.UR_ID)
        positions = torch.arange(tokens.size(1), device=tokens.device).unsqueeze(0).expand_as(tokens)
        return self.transformer_at(tokens, positions, self.get_attention_mask(tokens), item_seq_len)  # [B H]

    def encode(self, item_seq, item_seq_len):
        """Representation of every prefix [B L H]: item outputs (`last`), or the [UR] output of each prefix."""
        if self.user_token == "last":
            return super().encode(item_seq, item_seq_len)
        positions = torch.arange(item_seq.size(1), device=item_seq.device).expand_as(item_seq)  # [B L]
        items = self.embed(item_seq, positions)  # [B L H]
        urs = self.embed(torch.full_like(item_seq, self.UR_ID), positions + 1)  # the [UR] after each item [B L H]
        return encode_two_streams(self.trm_encoder, items, urs, self.get_attention_mask(item_seq))  # [B L H]

    # ------------------------------------------------------------------------------------------- pretraining
    def views(self, interaction):
        """Two augmented views (item_seq, item_seq_len) of every sequence of the batch; the batch is untouched."""
        item_seq, item_seq_len = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        generator = self.generator(item_seq.device)
        return self.augmenter(item_seq, item_seq_len, generator), self.augmenter(item_seq, item_seq_len, generator)

    def projected_views(self, interaction):
        """The projector outputs z [B D] of the two views of every sequence (the first one's spread tracked)."""
        (seq_1, len_1), (seq_2, len_2) = self.views(interaction)
        z_1 = self.projector(self.forward(seq_1, len_1))  # [B D]
        z_2 = self.projector(self.forward(seq_2, len_2))  # [B D]
        self.track_projection(z_1)
        return z_1, z_2

    def pretrain_loss(self, interaction):
        raise NotImplementedError("a pretraining model defines pretrain_loss(interaction)")

    @staticmethod
    def _spread(x):
        """Mean over dimensions of the batch std of the l2-normalised rows of x [B D]: about 1/sqrt(D) when they
        spread over the sphere, 0 when every row is the same (SimSiam's collapse indicator)."""
        return F.normalize(x.detach(), dim=-1).std(dim=0).mean().item()

    def track_projection(self, z):
        """Record the spread of a training batch's projector outputs z [B D] (`pretrain_loss` calls it)."""
        self._projection_spreads.append(self._spread(z))

    @torch.no_grad()
    def collapse_indicators(self, interaction):
        """`embedding_std`: the spread of the user representations h(s) of `interaction` (eval mode);
        `projection_std`: the mean spread of the projector outputs z over the training batches since the last
        call (SimSiam measures it on z: the projector's BatchNorm makes an eval-mode z meaningless early on)."""
        h = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])  # [B H]
        indicators = {"embedding_std": self._spread(h)}
        if self._projection_spreads:
            indicators["projection_std"] = sum(self._projection_spreads) / len(self._projection_spreads)
            self._projection_spreads = []
        return indicators

    def calculate_loss(self, interaction):
        if self.train_stage == "pretrain":
            if len(interaction) < 2:  # a final batch of one row: no batch statistics for the heads' BatchNorm
                return self.item_embedding.weight.sum() * 0
            loss = self.pretrain_loss(interaction)
            self.loss_terms = {"L_pretrain": loss.detach()}
            return loss
        loss = self.next_item_loss(interaction)[0]
        self.loss_terms = {"L_pred": loss.detach()}
        return loss

    # ------------------------------------------------------------------------------------------- fine-tuning
    def load_pretrained_encoder(self, path):
        """Load the encoder's parameters from a pretraining checkpoint of this family (CLUE, BTPretrain)."""
        loaded, source = load_encoder(self, path)
        self.logger.info(f"{type(self).__name__}: encoder loaded from {path} ({source}, {len(loaded)} tensors; heads not used)")


def _pretrained_encoder(path, name):
    """(the encoder tensors of a pretraining checkpoint, its model's name); else a one-line CheckpointError."""
    checkpoint = read_checkpoint(path, "pre_model_path", PRETRAIN_HINT)
    source = check_pretrained(checkpoint, path, name, pretraining_models())
    return {k: v for k, v in checkpoint["state_dict"].items() if k.startswith(ENCODER_PREFIXES)}, source


def pretraining_models():
    """Names of the loaded `SequencePretrainer` classes (recbole_bt's and any a user defined)."""
    found, todo = set(), [SequencePretrainer]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return found - {SequencePretrainer.__name__}


def load_encoder(model, path, first_rows=False):
    """Load a pretraining checkpoint's encoder (embeddings, transformer blocks, LayerNorm) into `model`; returns
    (the keys loaded, the checkpoint's model). `first_rows`: an embedding table with more rows in the checkpoint
    (a pretrainer's [MASK] and [UR] tokens, its [UR] position) gives its first rows, the catalog's and positions'."""
    name = type(model).__name__
    state, source = _pretrained_encoder(path, name)
    own = {k: v for k, v in model.state_dict().items() if k.startswith(ENCODER_PREFIXES)}
    if first_rows:
        state = {k: v[: len(own[k])] if k in own and v.dim() == 2 and v.shape[1:] == own[k].shape[1:]
                 and len(v) > len(own[k]) and k.endswith("embedding.weight") else v for k, v in state.items()}  # fmt: skip
    problems = shape_problems(own, {k: v for k, v in state.items() if k in own})
    if problems:
        raise CheckpointError(
            f"cannot fine-tune {name} from '{path}' ({source}): the encoders differ ({summarise(problems)}); "
            f"pretrain with the same dataset, hidden_size, n_layers and MAX_ITEM_LIST_LENGTH"
        )
    model.load_state_dict({k: state[k] for k in own}, strict=False)
    return list(own), source


def warm_start(model, path):
    """`pre_model_path` given to a model without a pretraining stage: a SASRec-family model (SASRec, BTSRec,
    CL4SRec, DuoRec, RecBole's SASRec) starts from the checkpoint's encoder (logged); any other refuses in one line."""
    name = type(model).__name__
    own = {k.split(".")[0] + "." for k in model.state_dict()}
    if hasattr(model, "train_stage") or not set(ENCODER_PREFIXES) <= own:
        raise CheckpointError(
            f"{name} cannot start from pre_model_path '{path}': only the SASRec family (SASRec, BTSRec, CL4SRec, "
            f"DuoRec) and the pretraining models read it; drop pre_model_path or pick one of those"
        )
    loaded, source = load_encoder(model, path, first_rows=True)
    getLogger().info(f"{name}: encoder initialised from {path} ({source}): {', '.join(loaded)}")
