"""Small building blocks shared by the models: the MLP heads of the self-supervised losses."""
from torch import nn


def mlp(sizes, last_norm=False):
    """MLP [sizes[0] -> ... -> sizes[-1]]: Linear + BatchNorm + ReLU between layers; the last layer is a Linear,
    followed by a BatchNorm when `last_norm` (SimSiam's projector: BN on every layer)."""
    layers = []
    for i in range(len(sizes) - 2):
        layers += [nn.Linear(sizes[i], sizes[i + 1], bias=False), nn.BatchNorm1d(sizes[i + 1]), nn.ReLU(inplace=True)]
    layers.append(nn.Linear(sizes[-2], sizes[-1], bias=False))
    if last_norm:
        layers.append(nn.BatchNorm1d(sizes[-1]))
    return nn.Sequential(*layers)
