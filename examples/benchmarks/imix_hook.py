"""i-Mix as an experiment hook of ``tuning_screen.py`` (``--imix WEIGHT ALPHA``): SimCLR that also contrasts mixed images.

Lee et al. (ICLR 2021, "i-Mix: A Domain-Agnostic Strategy for Contrastive Representation Learning") treat each image
of a batch as its own class and apply mixup to those virtual classes: an anchor view becomes ``lam * x_i + (1 - lam) *
x_j`` (``lam`` drawn from Beta(alpha, alpha), taken as ``max(lam, 1 - lam)``, ``j`` a random other image of the batch),
and its contrastive target is the other view of ``i`` with weight ``lam`` and the other view of ``j`` with weight ``1 -
lam``. The paper reports its largest gains where the data set is small and training long, a regime that a 10,000-image
split nears: the eleventh and thirteenth sessions found 10 epochs scoring about as 20, the recipe's ceiling rather than
its epochs. It is screened as a regulariser on top of easyssl's loss, not in place of it: the mixed anchors are a third
batch in the same forward pass (a step costs about 1.5 times as much), and their loss, the paper's N-pair form
against the clean second views, is added times ``WEIGHT``. Rotation prediction and the correlation penalty see the
clean views only: a mixed image holds two images turned differently.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mix(images: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch mixed with a permutation of itself: ``(mixed, partner, lam)``, ``mixed[i] = lam[i] * images[i] + (1 -
    lam[i]) * images[partner[i]]``, with ``lam`` from Beta(``alpha``, ``alpha``) folded to at least 0.5 (the paper's)."""
    batch = images.shape[0]
    lam = torch.distributions.Beta(alpha, alpha).sample((batch,)).to(images.device)
    lam = torch.maximum(lam, 1.0 - lam)
    partner = torch.randperm(batch, device=images.device)
    weight = lam.view(-1, *([1] * (images.dim() - 1))).to(images.dtype)
    return weight * images + (1 - weight) * images[partner], partner, lam


def imix_loss(anchors: torch.Tensor, keys: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor, temperature: float) -> torch.Tensor:
    """i-Mix's N-pair loss: the cosine logits of each mixed anchor against every key, cross-entropy towards its own key
    with weight ``lam`` and towards its partner's with weight ``1 - lam``."""
    logits = F.normalize(anchors.float(), dim=1) @ F.normalize(keys.float(), dim=1).T / temperature
    own = torch.arange(anchors.shape[0], device=anchors.device)
    loss = lam * F.cross_entropy(logits, own, reduction="none") + (1 - lam) * F.cross_entropy(logits, partner, reduction="none")
    return loss.mean()


def use_imix(weight: float, alpha: float = 1.0) -> None:
    """SimCLR (easyssl's, rotation prediction, penalty and feature norm as configured) plus ``weight`` x
    :func:`imix_loss` of the first views mixed (:func:`mix`), against the clean second views, at the criterion's
    temperature."""
    from easyssl.methods import simclr

    def training_loss(self, views, criterion, progress):
        # SimCLR.training_loss with a third, mixed batch; with weight 0 it is SimCLR's loss (a test checks)
        batch = views[0].shape[0]
        both, turns = self.paired_views(views)
        mixed, partner, lam = mix(both[:batch], alpha)
        features = self.embed(torch.cat([both, mixed], dim=0)) if weight > 0 else self.embed(both)
        z = self.projection_head(features)
        z0, z1 = z[:batch], z[batch: 2 * batch]
        loss = criterion(z0, z1)
        if weight > 0:
            loss = loss + weight * imix_loss(z[2 * batch:], z1, partner, lam, criterion.temperature)
        return self.add_auxiliary_losses(loss, features[: 2 * batch], turns)  # the clean views only

    simclr.SimCLR.training_loss = training_loss
