"""Experiment hooks of ``tuning_screen.py``: settings screened on the tuning split that are not easyssl options.

Each hook changes how :class:`easyssl.models.SimCLR` trains (it replaces a method of the class for the
process; ``use_more_views`` also that of the batched augmentation), so a setting that lost can be re-run exactly as it was measured; the figures are in the README's
tuning notes and in ``results/tuning_screen_*.jsonl``. ``tuning_screen.py --help`` lists the flags.
"""

from __future__ import annotations

import torch


def isotropy_penalty(features: torch.Tensor) -> torch.Tensor:
    """Squared distance of the features' second-moment matrix, scaled to trace D, to the identity (divided by D)."""
    h = features.float()
    moment = h.T @ h / h.shape[0]
    d = moment.shape[0]
    moment = moment * (d / moment.diagonal().sum().clamp_min(1e-8))
    return ((moment - torch.eye(d, device=moment.device)) ** 2).sum() / d


def add_isotropy_penalty(weight: float) -> None:
    """Make SimCLR's training loss NT-Xent + ``weight`` x :func:`isotropy_penalty` of the backbone features."""
    from easyssl.methods import simclr

    def training_loss(self, views, criterion, progress):
        h = self.embed(torch.cat(list(views[:2]), dim=0))
        z0, z1 = self.projection_head(h).chunk(2, dim=0)
        return criterion(z0, z1) + weight * isotropy_penalty(h)

    simclr.SimCLR.training_loss = training_loss


def use_direct_loss(dims: int) -> None:
    """DirectCLR (Jing et al., 2022): SimCLR's loss on the first ``dims`` backbone features themselves, no projection head
    (the paper's remedy for the dimensional collapse that a projector lets the backbone features fall into)."""
    from easyssl.methods import simclr

    def training_loss(self, views, criterion, progress):
        h = self.embed(torch.cat(list(views[:2]), dim=0))
        z0, z1 = h[:, :dims].chunk(2, dim=0)
        return criterion(z0, z1)

    simclr.SimCLR.training_loss = training_loss


def use_local_views(count: int, size: int, scale: tuple[float, float] = (0.4, 0.8)) -> None:
    """Multi-crop for SimCLR, cheaply: ``count`` extra ``size`` px crops (each side ``scale`` of the view) cut from the two
    views of the batch, each trained to match the *other* view of its image with the same NT-Xent loss."""
    from torchvision.ops import roi_align

    from easyssl.methods import simclr

    def training_loss(self, views, criterion, progress):
        v0, v1 = views[:2]
        z0, z1 = self(torch.cat([v0, v1], dim=0)).chunk(2, dim=0)
        loss, batch, side = criterion(z0, z1), v0.shape[0], v0.shape[-1]
        boxes = []
        for i in range(count):
            frac = torch.empty(batch).uniform_(*scale) * side
            x = torch.rand(batch) * (side - frac)
            y = torch.rand(batch) * (side - frac)
            boxes.append(torch.stack([torch.arange(batch, dtype=torch.float32) + (i % 2) * batch, x, y, x + frac, y + frac], 1))
        crops = roi_align(torch.cat([v0, v1]).float(), torch.cat(boxes).to(v0.device), output_size=size, aligned=True)
        local = self(crops.to(v0.dtype)).chunk(count, dim=0)
        for i, z in enumerate(local):
            loss = loss + criterion(z, z1 if i % 2 == 0 else z0)  # a crop of one view matches the other view
        return loss / (1 + count)

    simclr.SimCLR.training_loss = training_loss


def use_decoupled_loss(weighted: bool, joint: bool = False, sigma: float = 0.5) -> None:
    """SimCLR with the decoupled contrastive loss (DCL, Yeh et al., 2022): NT-Xent without the positive pair in the
    denominator. ``joint``: the paper's form, :class:`easyssl.loss.DCLLoss` (one log-sum-exp over all 2N - 2
    negatives). Otherwise the variant screened first: one log-sum-exp over each view's negatives, the two summed
    (twice the weight on the negatives); ``weighted`` adds DCLW's weights ``2 - N softmax(sim / sigma)`` (detached)."""
    import torch.nn.functional as F

    from easyssl.loss import DCLLoss, ntx_ent

    def one_side(a, b, t):
        n = a.shape[0]
        diag = torch.eye(n, dtype=torch.bool, device=a.device)
        sim_aa, sim_ab = a @ a.T / t, a @ b.T / t
        positive = -sim_ab.diagonal()
        if weighted:
            positive = positive * (2 - n * torch.softmax((a * b).sum(1).detach() / sigma, dim=0))
        return (positive + torch.logsumexp(sim_aa[~diag].view(n, -1), 1) + torch.logsumexp(sim_ab[~diag].view(n, -1), 1)).mean()

    def forward(self, z0, z1):
        if joint:
            return DCLLoss(self.temperature)(z0, z1)
        z0, z1 = F.normalize(z0.float(), dim=1), F.normalize(z1.float(), dim=1)
        return 0.5 * (one_side(z0, z1, self.temperature) + one_side(z1, z0, self.temperature))

    ntx_ent.NTXentLoss.forward = forward


def add_embedding_loss(weight: float, temperature: float, uniformity: bool = False) -> None:
    """Add ``weight`` x a second loss on the model's own features (what ``embed_images`` returns before whitening)
    to SimCLR's (the rotation prediction and the decorrelation included): NT-Xent at ``temperature`` between the two
    views' features (deep supervision of the embedding itself, where DirectCLR puts the *only* loss), or with
    ``uniformity`` Wang & Isola's uniformity loss of the L2-normalised features (``log mean exp(-t |f_i - f_j|^2)``,
    t = ``temperature``), which spreads them over the sphere without asking anything of the pairs. (The screens of
    the seventh session ran it before the decorrelation rule, with ``decorrelation_weight`` 0 in effect.)"""
    from easyssl.loss import NTXentLoss
    from easyssl.methods import simclr

    extra = NTXentLoss(temperature=temperature)
    original_loss, original_embed = simclr.SimCLR.training_loss, simclr.SimCLR.embed

    def embed(self, x):
        self.last_features = original_embed(self, x)
        return self.last_features

    def training_loss(self, views, criterion, progress):
        loss = original_loss(self, views, criterion, progress)  # its one forward pass sets last_features
        h = self.last_features
        if uniformity:
            f = torch.nn.functional.normalize(h.float(), dim=1)
            return loss + weight * torch.pdist(f).pow(2).mul(-temperature).exp().mean().log()
        h0, h1 = h.chunk(2, dim=0)
        return loss + weight * extra(h0, h1)

    simclr.SimCLR.embed = embed
    simclr.SimCLR.training_loss = training_loss


def use_paper_rotation(weight: float) -> None:
    """E-SimCLR closer to the paper's form (Dangovski et al., 2022; its code turns a third, 16 px crop all four ways):
    the views are not turned; a third batch (the first view of
    every image turned by a random multiple of 90 degrees) is forwarded for the rotation prediction alone, whose
    cross-entropy, times ``weight``, is added to NT-Xent. easyssl's own form (``model.rotation_weight``, the default
    for small images) turns both views of an image alike instead, forwarding no extra images."""
    import torch.nn.functional as F

    from easyssl.methods import simclr
    from easyssl.nn import RotationPredictionHead
    from easyssl.transforms import quarter_turn, random_quarter_turns

    original_init = simclr.SimCLR.__init__

    def __init__(self, backbone, *args, **kwargs):
        original_init(self, backbone, *args, **{**kwargs, "rotation_weight": 0.0})
        self.rotation_head = RotationPredictionHead(self.projection_head.layers[0].in_features)

    def training_loss(self, views, criterion, progress):
        v0, v1 = views[:2]
        turns = random_quarter_turns(v0.shape[0], device=v0.device)
        h = self.embed(torch.cat([v0, v1, quarter_turn(v0, turns)], dim=0))
        z0, z1 = self.projection_head(h[: 2 * v0.shape[0]]).chunk(2, dim=0)
        return criterion(z0, z1) + weight * F.cross_entropy(self.rotation_head(h[2 * v0.shape[0]:]).float(), turns)

    simclr.SimCLR.__init__ = __init__
    simclr.SimCLR.training_loss = training_loss


def use_turns_only() -> None:
    """Both views of an image turned alike by a random multiple of 90 degrees, as with ``model.rotation_weight``, but
    nothing predicts the turns (use with ``--set model.rotation_weight=0``): whether the gain is the turns' or the
    prediction's."""
    from easyssl.methods import simclr
    from easyssl.transforms import quarter_turn, random_quarter_turns

    def training_loss(self, views, criterion, progress):
        turns = random_quarter_turns(views[0].shape[0], device=views[0].device).repeat(2)
        z0, z1 = self(quarter_turn(torch.cat(list(views[:2]), dim=0), turns)).chunk(2, dim=0)
        return criterion(z0, z1)

    simclr.SimCLR.training_loss = training_loss


#: The averaged models of ``--ema``, by momentum (set while training).
EMA_MODELS: dict = {}


def keep_weight_average(momenta: list[float]) -> None:
    """Keep an exponential moving average of the model's weights and buffers while SimCLR trains (updated before each
    step with the weights after the previous one), to read the averaged model out as well as the last weights."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    from easyssl.methods import simclr

    original = simclr.SimCLR.training_loss

    def training_loss(self, views, criterion, progress):
        for momentum in momenta:
            if momentum not in EMA_MODELS:
                EMA_MODELS[momentum] = AveragedModel(self, multi_avg_fn=get_ema_multi_avg_fn(momentum), use_buffers=True)
            else:
                EMA_MODELS[momentum].update_parameters(self)
        return original(self, views, criterion, progress)

    simclr.SimCLR.training_loss = training_loss


def use_more_views(count: int) -> None:
    """``count`` views of each image instead of two, all at the training view size (the batched augmentation's two
    view recipes drawn in turn, each draw independent), and SimCLR's loss over all of them: each view's positives are
    the ``count - 1`` other views of its image, its negatives every view of the other images (the multi-positive
    NT-Xent of SupCon, Khosla et al. 2020, with the image as its label). Rotation prediction turns all views of an
    image alike; the correlation penalty sees every view's features. Each step costs ``count / 2`` times two views'."""
    import torch.nn.functional as F

    from easyssl.methods import simclr
    from easyssl.transforms import quarter_turn, random_quarter_turns
    from easyssl.transforms.batched import BatchMultiViewAugment

    def forward(self, images):
        if len(self.augments) != 2:
            return [augment(images) for augment in self.augments]
        return [self.augments[i % 2](images) for i in range(count)]

    def training_loss(self, views, criterion, progress):
        batch = views[0].shape[0]
        every = torch.cat(list(views), dim=0)
        turns = None
        if self.rotation_head is not None:
            turns = random_quarter_turns(batch, device=every.device).repeat(len(views))
            every = quarter_turn(every, turns)
        features = self.embed(every)
        z = F.normalize(self.projection_head(features).float(), dim=1)
        logits = z @ z.T / criterion.temperature
        image = torch.arange(batch, device=z.device).repeat(len(views))
        self_mask = torch.eye(len(image), dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(self_mask, float("-inf"))
        positive = (image[:, None] == image[None, :]) & ~self_mask
        log_prob = logits.log_softmax(dim=1)
        loss = -(log_prob.masked_fill(~positive, 0).sum(1) / positive.sum(1)).mean()
        if turns is not None:
            loss = loss + self.rotation_weight * F.cross_entropy(self.rotation_head(features).float(), turns)
        if self.decorrelation_weight > 0:
            loss = loss + self.decorrelation_weight * self.correlation_penalty(features)
        return loss

    BatchMultiViewAugment.forward = forward
    simclr.SimCLR.training_loss = training_loss


#: The training's progress (0-1) as the last SimCLR step saw it, for ``use_resolution_schedule``.
PROGRESS = {"fraction": 0.0}


def use_resolution_schedule(sizes: list[int]) -> None:
    """Progressive resizing (as FFCV's fast ImageNet recipes): the training views' side follows ``sizes``, each for an
    equal share of training (by the schedule's fraction, as the learning rate: ``16 20 24`` is 16 px for the first
    third, 20 for the second, 24 for the last; their mean cost in pixels, 411, is that of 20 px). Early steps are cheap
    and coarse, the last ones closer to the 28 px at which images are embedded (FixRes's train/test discrepancy)."""
    from easyssl.methods import simclr
    from easyssl.transforms.batched import BatchViewAugment

    original_forward, original_loss = BatchViewAugment.forward, simclr.SimCLR.training_loss

    def forward(self, images):
        share = min(int(PROGRESS["fraction"] * len(sizes)), len(sizes) - 1)
        self.input_size = int(sizes[share])
        return original_forward(self, images)

    def training_loss(self, views, criterion, progress):
        PROGRESS["fraction"] = float(progress.fraction)
        return original_loss(self, views, criterion, progress)

    BatchViewAugment.forward = forward
    simclr.SimCLR.training_loss = training_loss


def use_bf16_loss() -> None:
    """SimCLR's heads and losses under bf16 autocast on the CPU, the backbone as configured (float32 on a CPU without
    bf16 instructions): what a CUDA GPU's bf16 autocast does to the projection head, the NT-Xent similarities (its
    matmuls run in bf16 even on float32 inputs), the rotation head and the correlation penalty. Fourteenth session:
    an H200 run of about a CPU 10-minute run's steps scored 1.5 points lower as returned; this isolates the loss's
    share of the precision (the backbone's, in bf16 emulated by this CPU, would be too slow to screen)."""
    from easyssl.methods import simclr

    training_loss, embed = simclr.SimCLR.training_loss, simclr.SimCLR.embed

    def float32_embed(self, x):  # the backbone (and feature norm) outside the autocast
        with torch.autocast("cpu", enabled=False):
            return embed(self, x.float())

    def bf16_training_loss(self, views, criterion, progress):  # everything after the backbone in bf16
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return training_loss(self, views, criterion, progress)

    simclr.SimCLR.embed = float32_embed
    simclr.SimCLR.training_loss = bf16_training_loss


def debiased_nt_xent(z0: torch.Tensor, z1: torch.Tensor, temperature: float, tau_plus: float = 0.0, beta: float = 0.0) -> torch.Tensor:
    """NT-Xent of two ``(N, D)`` batches of projections, debiased for false negatives (Chuang et al., 2020, "Debiased
    contrastive learning") and, with ``beta`` above 0, with hard negatives weighted up (Robinson et al., 2021, "Contrastive
    learning with hard negative samples"; their reference code's form). ``tau_plus`` 0 and ``beta`` 0: NT-Xent itself.

    With few classes many of a batch's "negatives" are images of the anchor's own class (about a tenth with ten
    classes): the debiased estimate subtracts ``tau_plus`` (the assumed share of same-class images) of the positive's
    term from the negatives' sum, so the loss stops pushing same-class images apart. ``beta`` reweights each negative
    by ``exp(beta * sim / t)``, normalised to mean 1 per anchor (detached: the weights are not trained)."""
    import torch.nn.functional as F

    n, t = z0.shape[0], temperature
    out = F.normalize(torch.cat([z0.float(), z1.float()]), dim=1)
    logits = out @ out.T / t
    positive = torch.cat([(out[:n] * out[n:]).sum(1), (out[n:] * out[:n]).sum(1)]) / t
    mask = ~torch.eye(2 * n, dtype=torch.bool, device=out.device)
    mask[torch.arange(n), torch.arange(n) + n] = False
    mask[torch.arange(n) + n, torch.arange(n)] = False
    negative = logits[mask].view(2 * n, 2 * n - 2)
    count = 2 * n - 2
    if beta > 0:
        weights = torch.softmax(beta * negative.detach(), dim=1) * count
        negatives = (weights * negative.exp()).sum(1)
    else:
        negatives = negative.exp().sum(1)
    estimate = (negatives - tau_plus * count * positive.exp()) / (1 - tau_plus)
    estimate = estimate.clamp_min(count * torch.exp(torch.tensor(-1.0 / t)))
    return (torch.log(positive.exp() + estimate) - positive).mean()


def use_debiased_loss(tau_plus: float, beta: float = 0.0) -> None:
    """SimCLR's NT-Xent replaced by :func:`debiased_nt_xent` (without a memory bank, on one process, as the screens run)."""
    from easyssl.loss import NTXentLoss

    def forward(self, z0, z1):
        return debiased_nt_xent(z0, z1, self.temperature, tau_plus, beta)

    NTXentLoss.forward = forward


def use_zero_init_residual() -> None:
    """easyssl's ResNets with the last BatchNorm of each residual block initialised to zero (Goyal et al., 2017, "Accurate,
    large minibatch SGD"; torchvision's ``zero_init_residual``): every block starts as the identity, which fast training
    recipes use to train a deep network from its first steps."""
    from easyssl.nn import backbones

    for name in backbones.RESNETS:
        factory = backbones.BACKBONES[name]
        backbones.register_backbone(name, lambda *a, _factory=factory, **k: _factory(*a, zero_init_residual=True, **k))


def erase_rectangles(x: torch.Tensor, probability: float, scale: tuple[float, float] = (0.02, 0.2)) -> torch.Tensor:
    """``x`` (B, C, H, W) with, in each image with ``probability``, a rectangle of ``scale`` of its area (aspect ratio
    0.3-3.3, as torchvision's ``RandomErasing``) set to zero."""
    n, _, h, w = x.shape
    area = torch.empty(n).uniform_(*scale) * h * w
    ratio = torch.empty(n).uniform_(-1.2, 1.2).exp()
    eh = (area * ratio).sqrt().clamp(1, h).round()
    ew = (area / ratio).sqrt().clamp(1, w).round()
    y0 = (torch.rand(n) * (h - eh + 1)).floor()
    x0 = (torch.rand(n) * (w - ew + 1)).floor()
    rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    inside = (rows >= y0.view(n, 1, 1)) & (rows < (y0 + eh).view(n, 1, 1)) & (cols >= x0.view(n, 1, 1)) & (cols < (x0 + ew).view(n, 1, 1))
    inside &= (torch.rand(n) < probability).view(n, 1, 1)
    return x.masked_fill(inside.unsqueeze(1).to(x.device), 0.0)


def use_random_erasing(probability: float) -> None:
    """Random erasing (Zhong et al., 2020) on SimCLR's views (:func:`erase_rectangles`), zero being the normalised
    images' mean; each view on its own, so the two views of an image lose different parts."""
    from easyssl.methods import simclr

    original_loss = simclr.SimCLR.training_loss

    def training_loss(self, views, criterion, progress):
        return original_loss(self, [erase_rectangles(v, probability) for v in views[:2]] + list(views[2:]), criterion, progress)

    simclr.SimCLR.training_loss = training_loss
