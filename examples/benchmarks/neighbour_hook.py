"""Nearest-neighbour positives late in training, as an experiment hook of ``tuning_screen.py`` (``--late-neighbours
START QUEUE``).

NNCLR (Dwibedi et al., ICCV 2021) replaces each image's own second view, as its positive, by the nearest neighbour of
its first view's projection among a queue of earlier batches' projections: the loss then pulls together different
images that look alike, which is what a kNN vote over 200 neighbours rewards. Trained so from the start, it lost
here (docs/tuning_notes.md, the fifth session: 1.4 points behind SimCLR before whitening at 10 minutes), where the neighbours of an
untrained network are mostly of other classes. This hook keeps SimCLR's loss until ``START`` (a fraction of
training), then switches to NNCLR's symmetric loss, ``(NT-Xent(nn(z0), z1) + NT-Xent(nn(z1), z0)) / 2``, when the
features' neighbours are mostly of the image's class (about 0.88 at k=20 for a 10-epoch model). The queue holds the
last ``QUEUE`` first-view projections (detached; filled from the first step, so it is full when the switch comes);
rotation prediction and the correlation penalty are unchanged.
"""

from __future__ import annotations

from easyssl.nn.support_set import NNMemoryBankModule


def use_late_neighbours(start: float, queue_size: int = 4096) -> None:
    """SimCLR (easyssl's, rotation prediction, penalty and feature norm as configured) until ``start`` of training,
    then NNCLR's symmetric loss with nearest neighbours from NNCLR's own support set
    (:class:`easyssl.nn.support_set.NNMemoryBankModule`) of ``queue_size``, kept beside the model, not in its checkpoint."""
    from easyssl.methods import simclr

    queues: dict[int, NNMemoryBankModule] = {}

    def training_loss(self, views, criterion, progress):
        # SimCLR.training_loss from its parts; before ``start`` it is SimCLR's loss (a test checks)
        both, turns = self.paired_views(views)
        features = self.embed(both)
        z0, z1 = self.projection_head(features).chunk(2, dim=0)
        if id(self) not in queues:  # made once, on the first step: its size is the projections'
            queues[id(self)] = NNMemoryBankModule(queue_size, z0.shape[1]).to(z0.device)
        queue = queues[id(self)]
        if progress is not None and progress.fraction >= start and int(queue.filled) > 0:
            loss = (criterion(queue.nearest_neighbours(z0), z1) + criterion(queue.nearest_neighbours(z1), z0)) / 2
        else:
            loss = criterion(z0, z1)
        queue.enqueue(z0)
        return self.add_auxiliary_losses(loss, features, turns)

    simclr.SimCLR.training_loss = training_loss

