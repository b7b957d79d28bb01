"""CLD as an experiment hook of ``tuning_screen.py`` (``--cld WEIGHT CLUSTERS TEMPERATURE``): SimCLR that also
discriminates groups across views.

Wang, Liu and Yu (CVPR 2021, "Unsupervised Feature Learning by Cross-Level Instance-Group Discrimination") add to an
instance-contrastive loss a second branch: a linear head on the backbone's features, L2-normalised, whose outputs for
each view are clustered by k-means within the batch; each image's other view is then classified among the first
view's cluster centroids (cosine logits over a temperature), its target the cluster its first view fell in, and the
same the other way round. Instance discrimination pushes apart every two images, look-alikes of one class included;
the group branch pulls an image towards the others that look like it, which is what a kNN vote over 200 neighbours
rewards. The paper reports its largest gains on small, highly correlated data sets and short training (CIFAR with
NPID and MoCo), the regime of a 10-minute CPU run on 10,000 Fashion-MNIST images, whose ceiling the screens since the
ninth session found to be the recipe's, not its epochs'. Its own settings on CIFAR-10: 128 clusters in a batch of 256
(NPID) or 200 (MoCo), temperature 0.2, weight 1.0 or 0.8, five k-means iterations. The group head and k-means add a
few small matrix products to a step; rotation prediction and the correlation penalty are unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def batch_kmeans(x: torch.Tensor, clusters: int, iterations: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means of the rows of ``x`` (squared Euclidean distance) from ``clusters`` distinct random rows, for
    ``iterations`` assignment-and-mean rounds: ``(labels, centroids)``. An empty cluster's centroid is the zero vector
    (as in the paper's code); the centroids are means of ``x`` and carry its gradient, the labels do not."""
    n = x.shape[0]
    clusters = min(clusters, n)
    centroids = x[torch.randperm(n, device=x.device)[:clusters]]
    labels = torch.zeros(n, dtype=torch.long, device=x.device)
    for _ in range(iterations):
        with torch.no_grad():
            labels = torch.cdist(x.float(), centroids.float()).argmin(dim=1)
        sums = torch.zeros(clusters, x.shape[1], dtype=x.dtype, device=x.device).index_add(0, labels, x)
        counts = torch.bincount(labels, minlength=clusters).clamp(min=1).to(x.dtype)
        centroids = sums / counts[:, None]
    return labels, centroids


def cld_loss(first: torch.Tensor, second: torch.Tensor, clusters: int, temperature: float) -> torch.Tensor:
    """Cross-level discrimination of two views' group features (rows L2-normalised here): each view's rows are
    classified among the other view's k-means centroids, towards the cluster of the same image's other view; the mean
    of the two directions."""
    first, second = F.normalize(first.float(), dim=1), F.normalize(second.float(), dim=1)
    labels0, centroids0 = batch_kmeans(first, clusters)
    labels1, centroids1 = batch_kmeans(second, clusters)
    loss0 = F.cross_entropy(first @ centroids1.T / temperature, labels1)
    loss1 = F.cross_entropy(second @ centroids0.T / temperature, labels0)
    return (loss0 + loss1) / 2


def use_cld(weight: float, clusters: int = 64, temperature: float = 0.2, dim: int = 128) -> None:
    """SimCLR (easyssl's, rotation prediction, penalty and feature norm as configured) plus ``weight`` x
    :func:`cld_loss` of a linear group head (the backbone's features to ``dim``, the paper's) over ``clusters``
    clusters per view and batch."""
    from torch import nn

    from easyssl.methods import simclr

    original_init = simclr.SimCLR.__init__

    def __init__(self, backbone, *args, **kwargs):
        original_init(self, backbone, *args, **kwargs)
        self.group_head = nn.Linear(self.projection_head.layers[0].in_features, dim)

    def training_loss(self, views, criterion, progress):
        # SimCLR.training_loss from its parts, plus the group branch; with weight 0 it is SimCLR's loss (a test checks)
        both, turns = self.paired_views(views)
        features = self.embed(both)
        z0, z1 = self.projection_head(features).chunk(2, dim=0)
        loss = self.add_auxiliary_losses(criterion(z0, z1), features, turns)
        if weight > 0:
            g0, g1 = self.group_head(features).chunk(2, dim=0)
            loss = loss + weight * cld_loss(g0, g1, clusters, temperature)
        return loss

    simclr.SimCLR.__init__ = __init__
    simclr.SimCLR.training_loss = training_loss
