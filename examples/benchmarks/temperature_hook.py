"""A temperature schedule for NT-Xent, as an experiment hook of ``tuning_screen.py`` (``--temperature-schedule LOW HIGH
CYCLES``).

Kukleva et al. (ICLR 2023, "Temperature Schedules for Self-Supervised Contrastive Methods on Long-Tail Data") move
the temperature along cosine cycles instead of fixing it: at a high temperature a view's loss is spread over many
negatives, so images that look alike are pushed apart less (features of groups), at a low one over the nearest few
(features of instances). They report gains on long-tailed data and no loss on balanced CIFAR; a kNN vote over 200
neighbours rewards the group-level features the high phases favour. Their setting: 0.1 to 1.0, a period of a fifth of
training.
"""

from __future__ import annotations


def cosine_temperature(fraction: float, low: float, high: float, cycles: float) -> float:
    """Kukleva et al. (ICLR 2023, "Temperature Schedules for Self-Supervised Contrastive Methods on Long-Tail Data"):
    ``low + (high - low) * (1 + cos(2 pi cycles fraction)) / 2``, from ``high`` at the start through ``cycles`` cosine
    periods. A high temperature spreads a view's loss over many negatives (images that look alike are pushed apart
    less: group-level features), a low one over the nearest few (instance-level): the schedule alternates the two."""
    import math

    return low + (high - low) * (1 + math.cos(2 * math.pi * cycles * fraction)) / 2


def use_temperature_schedule(low: float, high: float, cycles: float) -> None:
    """SimCLR's loss with NT-Xent's temperature set before each step by :func:`cosine_temperature` of the progress."""
    from easyssl.methods import simclr

    plain = simclr.SimCLR.training_loss

    def training_loss(self, views, criterion, progress):
        if progress is not None:
            criterion.temperature = cosine_temperature(progress.fraction, low, high, cycles)
        return plain(self, views, criterion, progress)

    simclr.SimCLR.training_loss = training_loss
