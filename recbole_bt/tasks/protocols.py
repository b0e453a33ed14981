"""The two protocols of the downstream user tasks: a linear probe on frozen user embeddings, and full fine-tuning.

Both train a linear head (``Linear(hidden_size, classes)``; the classes of ``next_item`` are the items, and its
head starts from the model's own scoring table, the item embeddings that `full_sort_predict` uses, bias 0) with
cross-entropy and Adam on the labelled training users, score the validation users after every epoch, keep the
epoch with the best validation score (stopping after ``user_task_stopping_step`` epochs without a better one;
with ``user_task_keep_start`` the head as it starts, epoch 0, is a candidate too, so that training never ends
below its start: the ``next_item`` head starts from the model's own item scores), and return that epoch's
predictions for the test users. Without labelled users (label ratio 0) nothing trains: the head as it starts
scores the test users (for ``next_item`` the model's own item scores, a zero-shot figure).

- `linear_probe`: the encoder is frozen; the user embeddings h(s) [U H] are computed once in eval mode and
  standardised with the labelled users' mean and std (attributes; ``next_item`` keeps them raw, for the item
  table the head starts from).
- An attribute's head starts from random weights, or (``user_task_head_start: prior``) from zero weights and the
  labelled users' log class frequencies (`class_log_prior`): the majority-class rule, which with
  ``user_task_keep_start`` is then a candidate of the selection, so no reported head is below it on validation.
- `fine_tune`: the encoder's parameters train with the head (dropout on); the model is restored to the weights it
  came with afterwards, so every task and label ratio starts from the same encoder.
"""
import copy

import torch
from torch import nn


@torch.no_grad()
def embed(model, item_seq, item_seq_len, batch_size):
    """h(s) [U H] of every sequence, eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = [model.forward(item_seq[i:i + batch_size].to(device), item_seq_len[i:i + batch_size].to(device)).cpu()
           for i in range(0, len(item_seq), batch_size)]  # fmt: skip
    model.train(was_training)
    return torch.cat(out)


class _HeadTrainer:
    """Minibatch cross-entropy training of `predict(index) -> logits` with best-on-validation selection."""

    def __init__(self, settings, score):
        self.settings, self.score = settings, score  # score(logits [V C], users [V]) -> float, higher is better

    def run(self, predict, parameters, labels, train, valid, test, modules):
        s = self.settings
        optimizer = torch.optim.Adam(parameters, lr=s["learning_rate"], weight_decay=s["weight_decay"])
        generator = torch.Generator().manual_seed(s["seed"])
        y = torch.as_tensor(labels)
        best, best_state, best_epoch, waited, epochs = -float("inf"), None, None, 0, 0
        if s.get("keep_start", True) or len(train) == 0:  # the start is a candidate (no labelled user: the only one)
            best, best_epoch = self.score(self.logits(predict, valid, modules), valid), 0
            best_state = [copy.deepcopy(m.state_dict()) for m in modules]
        for epoch in range(s["epochs"] if len(train) else 0):
            for m in modules:
                m.train()
            order = train[torch.randperm(len(train), generator=generator)]
            for i in range(0, len(order), s["batch_size"]):
                batch = order[i:i + s["batch_size"]]
                logits = predict(batch)  # [B C]
                loss = nn.functional.cross_entropy(logits, y[batch].to(logits.device))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            epochs = epoch + 1
            score = self.score(self.logits(predict, valid, modules), valid)
            if score > best:
                best, best_epoch, waited = score, epochs, 0
                best_state = [copy.deepcopy(m.state_dict()) for m in modules]
            else:
                waited += 1
                if waited >= s["stopping_step"]:
                    break
        for m, state in zip(modules, best_state):
            m.load_state_dict(state)
        return self.logits(predict, test, modules), {"best_valid": best, "epochs": epochs, "best_epoch": best_epoch}

    @torch.no_grad()
    def logits(self, predict, users, modules):
        for m in modules:
            m.eval()
        return torch.cat([predict(users[i:i + 4096]) for i in range(0, len(users), 4096)]).cpu()


def make_head(in_size, n_classes, init_weight=None, init_bias=None):
    """Linear(in_size, n_classes), from RecBole-style random weights or from `init_weight` [C H] with `init_bias` [C]
    (0 when not given)."""
    head = nn.Linear(in_size, n_classes)
    if init_weight is not None:
        with torch.no_grad():
            head.weight.copy_(init_weight)
            head.bias.copy_(torch.zeros(n_classes) if init_bias is None else init_bias)
    return head


def class_log_prior(labels, n_classes):
    """log of the labelled users' class frequencies [C], add-one smoothed (a class no labelled user has stays
    finite): the bias of a head with zero weights that answers every user with the most frequent class."""
    counts = torch.bincount(torch.as_tensor(labels), minlength=n_classes).double() + 1
    return (counts / counts.sum()).log().float()


def linear_probe(features, labels, n_classes, train, valid, test, settings, score, init_weight=None, init_bias=None,
                 standardise=None):  # fmt: skip
    """Linear head on frozen features [U H], from `init_weight` [C H] and `init_bias` [C] when given; the features
    are standardised with the training users' mean and std when `standardise` (default: unless the head starts
    from `init_weight`). Returns (test logits [T C], info)."""
    torch.manual_seed(settings["seed"])
    x = features
    if standardise is None:
        standardise = init_weight is None
    if standardise:
        mean, std = features[train].mean(0), features[train].std(0, unbiased=False).clamp_min(1e-6)
        x = (features - mean) / std
    head = make_head(x.size(1), n_classes, None if init_weight is None else init_weight.detach().cpu(), init_bias)
    return _HeadTrainer(settings, score).run(lambda idx: head(x[idx]), head.parameters(), labels, train, valid, test, [head])


def fine_tune(model, sequences, labels, n_classes, train, valid, test, settings, score, init_weight=None,
              init_bias=None):  # fmt: skip
    """Encoder and linear head (from `init_weight` [C H] and `init_bias` [C] when given) trained together.
    Returns (test logits [T C], info); the model is left as it came."""
    torch.manual_seed(settings["seed"])
    device = next(model.parameters()).device
    initial = copy.deepcopy(model.state_dict())
    head = make_head(model.hidden_size, n_classes, init_weight, init_bias).to(device)
    seq, seq_len = sequences.item_seq.to(device), sequences.item_seq_len.to(device)

    def predict(idx):
        idx = idx.to(device)
        return head(model.forward(seq[idx], seq_len[idx]))  # [B C]

    parameters = list(model.parameters()) + list(head.parameters())
    try:
        return _HeadTrainer(settings, score).run(predict, parameters, labels, train, valid, test, [model, head])
    finally:
        model.load_state_dict(initial)
