"""A small sequential model that is not RecBole's, to test that recbole_bt finds, trains and reloads
models from outside RecBole (the package's own models go through the same registry)."""
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import InputType
from torch import nn


class MeanPoolRec(SequentialRecommender):
    """User = mean of the embeddings of the items in the sequence; score = dot product with item embeddings."""

    input_type = InputType.POINTWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.hidden_size = config["hidden_size"]
        self.item_embedding = nn.Embedding(self.n_items, self.hidden_size, padding_idx=0)
        self.dense = nn.Linear(self.hidden_size, self.hidden_size)
        self.loss_fct = nn.CrossEntropyLoss()

    def forward(self, item_seq, item_seq_len):
        emb = self.item_embedding(item_seq)  # [B L H]
        mean = emb.sum(dim=1) / item_seq_len.unsqueeze(1).clamp(min=1)  # [B H]
        return self.dense(mean)

    def calculate_loss(self, interaction):
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        logits = seq_output @ self.item_embedding.weight.T  # [B N]
        return self.loss_fct(logits, interaction[self.POS_ITEM_ID])

    def predict(self, interaction):
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return (seq_output * self.item_embedding(interaction[self.ITEM_ID])).sum(dim=-1)

    def full_sort_predict(self, interaction):
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return seq_output @ self.item_embedding.weight.T


class MeanPoolRecWithTrainer(MeanPoolRec):
    """The same model, naming its own trainer class."""

    trainer_class = "KGTrainer"
