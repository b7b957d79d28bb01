"""AugSelf as an experiment hook of ``tuning_screen.py`` (``--augself WEIGHT``): SimCLR that also predicts how its two
views were made.

Lee et al. (NeurIPS 2021, "Improving transferability of representations via augmentation-aware self-supervision")
add to a contrastive loss a small MLP that reads the two views' features, concatenated, and regresses the difference
of their augmentation parameters (the crops' centre and size, the colour jitter's factors), with a mean squared error
weighted 1. The contrastive loss makes the features invariant to those augmentations; the regression keeps in them
what the augmentations change (where an object sits, how large, how bright), which the paper found to help most
where classes differ in such details. It is the same kind of auxiliary task as E-SSL's rotation prediction, easyssl's
default for small images that added 1.4-2.9 points at short budgets (docs/tuning_notes.md, sixth session), so it is screened here.

How the hook gets the parameters: it replaces :class:`easyssl.transforms.BatchViewAugment`'s ``forward`` for the
views SimCLR trains on (crop, horizontal flip, colour jitter, grayscale, blur, normalisation, as the original; no
vertical flips or rotations, which SimCLR's views do not use) with one that also appends each view batch's
parameters to :data:`RECORDED`; SimCLR's training loss takes the last two. The crop's centre is measured in the
view's own frame (mirrored where the view was flipped), and the difference is turned with the views when rotation
prediction turns them, so the target is what the network can see.
"""

from __future__ import annotations

import math

import torch

#: Parameters of each view batch made since the last training step: ``(B, 8)`` tensors, in the order the views were made.
RECORDED: list[torch.Tensor] = []

#: The parameters of a view, in :func:`view_parameters`' columns.
PARAMETERS = ("centre_x", "centre_y", "width", "height", "brightness", "contrast", "saturation", "hue")


def view_parameters(boxes: torch.Tensor, height: int, width: int, flipped: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """``(B, 8)``: each view's crop centre and size as fractions of the image (the centre's x mirrored where the view
    was flipped) and its four colour-jitter values (``colour``: ``(B, 4)``, factors 1 and hue 0 where not jittered)."""
    cx = (boxes[:, 0] + boxes[:, 2]) / (2 * width)
    cy = (boxes[:, 1] + boxes[:, 3]) / (2 * height)
    cx = torch.where(flipped, 1.0 - cx, cx)
    w = (boxes[:, 2] - boxes[:, 0]) / width
    h = (boxes[:, 3] - boxes[:, 1]) / height
    return torch.cat([torch.stack([cx, cy, w, h], 1), colour], 1).float()


def difference_target(first: torch.Tensor, second: torch.Tensor, turns: torch.Tensor | None = None) -> torch.Tensor:
    """AugSelf's target: ``first - second`` (``(B, 8)`` parameters of each image's two views), the centres'
    displacement and the sizes turned as :func:`easyssl.transforms.quarter_turn` turns both views (counter-clockwise
    ``turns`` x 90 degrees: a displacement ``(dx, dy)`` becomes ``(dy, -dx)`` per turn, width and height swap)."""
    target = first - second
    if turns is None:
        return target
    dx, dy, dw, dh = target[:, 0], target[:, 1], target[:, 2], target[:, 3]
    k = turns.to(target.device) % 4
    cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=target.device)[k]
    sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=target.device)[k]
    odd = (k % 2 == 1)
    # (dx, dy) turned k times by (dx, dy) -> (dy, -dx): a rotation by -k x 90 degrees in (x, y)
    new_dx, new_dy = cos * dx + sin * dy, -sin * dx + cos * dy
    new_dw, new_dh = torch.where(odd, dh, dw), torch.where(odd, dw, dh)
    return torch.cat([torch.stack([new_dx, new_dy, new_dw, new_dh], 1), target[:, 4:]], 1)


def _uniform(n: int, low: float, high: float, device: torch.device) -> torch.Tensor:
    return torch.rand(n, device=device) * (high - low) + low


def _gray(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


@torch.no_grad()
def recording_forward(self, images: torch.Tensor) -> torch.Tensor:
    """``BatchViewAugment.forward`` for crop + flip views, with the parameters of the batch appended to :data:`RECORDED`."""
    from torchvision.ops import roi_align

    if self.vf_prob > 0 or self.rr_prob > 0:
        raise ValueError("the AugSelf hook records crops, horizontal flips and colour only (SimCLR's views)")
    x = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
    n, _, height, width = x.shape
    device = x.device
    boxes = self._crop_boxes(n, height, width, device)
    index = torch.arange(n, device=device, dtype=x.dtype).view(n, 1)
    x = roi_align(x, torch.cat([index, boxes.to(x.dtype)], 1), (self.input_size, self.input_size), 1.0, 0, True)
    flipped = torch.rand(n, device=device) < self.hf_prob
    x = torch.where(flipped.view(n, 1, 1, 1), x.flip(3), x)
    colour = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device).repeat(n, 1)
    if self.cj_prob > 0:
        apply = torch.rand(n, device=device) < self.cj_prob

        def factor(strength: float) -> torch.Tensor:
            f = _uniform(n, max(0.0, 1 - strength), 1 + strength, device)
            return torch.where(apply, f, torch.ones_like(f))

        b, c, s = factor(self.brightness), factor(self.contrast), factor(self.saturation)
        x = (x * b.view(n, 1, 1, 1)).clamp_(0, 1)
        mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * c.view(n, 1, 1, 1) + mean).clamp_(0, 1)
        gray = _gray(x)
        x = ((x - gray) * s.view(n, 1, 1, 1) + gray).clamp_(0, 1)
        hue = torch.zeros(n, device=device)
        if self.hue > 0:
            hue = _uniform(n, -self.hue, self.hue, device) * apply.float()
            x = self._rotate_hue(x, hue * (2 * math.pi))
        colour = torch.stack([b, c, s, hue], 1)
    if self.gray_prob > 0:
        to_gray = (torch.rand(n, device=device) < self.gray_prob).view(n, 1, 1, 1)
        x = torch.where(to_gray, _gray(x).expand_as(x), x)
    if self.blur_prob > 0:
        x = self._blur(x)
    if self.solarize_prob > 0:
        solarize = (torch.rand(n, device=device) < self.solarize_prob).view(n, 1, 1, 1)
        x = torch.where(solarize & (x >= 0.5), 1.0 - x, x)
    if self.mean is not None:
        x = (x - self.mean) / self.std
    RECORDED.append(view_parameters(boxes, height, width, flipped, colour))
    return x


def use_augself(weight: float, hidden: int = 512) -> None:
    """SimCLR (easyssl's, rotation prediction, penalty and feature norm as configured) plus AugSelf: an MLP
    ``2F -> hidden -> hidden -> 8`` (the paper's) on the two views' features regresses :func:`difference_target`,
    its mean squared error times ``weight`` added to the loss."""
    import torch.nn.functional as F
    from torch import nn

    from easyssl.methods import simclr
    from easyssl.transforms.batched import BatchViewAugment

    original_init = simclr.SimCLR.__init__

    def __init__(self, backbone, *args, **kwargs):
        original_init(self, backbone, *args, **kwargs)
        features = self.projection_head.layers[0].in_features
        self.augself_head = nn.Sequential(nn.Linear(2 * features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, hidden),
                                          nn.ReLU(inplace=True), nn.Linear(hidden, len(PARAMETERS)))

    def training_loss(self, views, criterion, progress):
        # SimCLR.training_loss from its parts, as it needs the features and the turns; a test checks the two agree
        if len(RECORDED) < 2:
            raise RuntimeError("the AugSelf hook found no recorded view parameters: are the views made in batches?")
        first, second = RECORDED[-2], RECORDED[-1]
        RECORDED.clear()
        batch = views[0].shape[0]
        both, turns = self.paired_views(views)
        features = self.embed(both)
        z0, z1 = self.projection_head(features).chunk(2, dim=0)
        loss = self.add_auxiliary_losses(criterion(z0, z1), features, turns)
        f0, f1 = features.chunk(2, dim=0)
        target = difference_target(first, second, None if turns is None else turns[:batch]).to(features.device)
        prediction = self.augself_head(torch.cat([f0, f1], dim=1)).float()
        return loss + weight * F.mse_loss(prediction, target)

    simclr.SimCLR.__init__ = __init__
    simclr.SimCLR.training_loss = training_loss
    BatchViewAugment.forward = recording_forward
