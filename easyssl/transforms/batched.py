"""Batched augmentations: random views for a whole ``uint8`` image batch at once, on any device.

The per-image transforms (:mod:`easyssl.transforms.simclr`...) run in data-loading
processes, one PIL image at a time; on a machine with few cores they starve the model,
and on a GPU they leave it idle. :class:`BatchViewAugment` makes the same kinds of views
for a batch in a handful of tensor operations on the training device: crop, resize,
flips and rotation are one affine ``grid_sample``; colour jitter, grayscale, blur and
solarisation are per-sample arithmetic selected by random masks.

Crops use ``torchvision.ops.roi_align`` (bilinear, with adaptive sampling that averages
when down-scaling); rotations by arbitrary angles fall back to ``grid_sample``.
Differences from the per-image versions (documented, and deliberate for speed): the four
colour-jitter operations are applied in a fixed order (brightness, contrast, saturation,
hue) instead of a random one, and hue is rotated in YIQ space instead of HSV.

The builders at the end (:func:`batch_two_view_augment`, :func:`batch_multi_crop_augment`,
:func:`batch_crop_flip_augment`) make the views of each family; :mod:`easyssl.transforms.twins`
pairs every per-image transform with its builder and defaults.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from easyssl.transforms.base import IMAGENET_NORMALIZE, blur_kernel_size
from easyssl.transforms.dino import default_local_size
from easyssl.transforms.mae import MAE_VIEW

_LUMA = (0.299, 0.587, 0.114)


def _uniform(n: int, low: float, high: float, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.rand(n, device=device, generator=generator) * (high - low) + low


def _gray(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


class BatchViewAugment(nn.Module):
    """One random view of every image in a batch, with SimCLR-style augmentations (LightlySSL's argument names).

    Input: ``(B, 3, H, W)`` uint8 (0-255) or float (0-1) images on any device.
    Output: ``(B, 3, input_size, input_size)`` float views, normalised.

    Args:
        input_size: Side of the output views.
        min_scale, max_scale: Range of the crop area as a fraction of the image.
        ratio: Range of the crop aspect ratio.
        hf_prob, vf_prob: Horizontal / vertical flip probabilities.
        rr_prob: Rotation probability; ``rr_degrees`` None rotates by a multiple of 90 degrees,
            a number ``d`` by an angle in ``(-d, d)``, a pair by an angle in that range.
        cj_prob, cj_strength, cj_bright, cj_contrast, cj_sat, cj_hue: Colour jitter as in
            :class:`~easyssl.transforms.SimCLRViewTransform`.
        random_gray_scale: Grayscale probability.
        gaussian_blur: Blur probability; ``sigmas`` the range of its standard deviation
            (in pixels of the output), ``kernel_size`` its size (default ~10% of the view).
        solarization: Solarisation probability (threshold 0.5).
        normalize: ``{"mean": ..., "std": ...}`` or None.

    Example:
        >>> augment = BatchViewAugment(input_size=32)
        >>> views = augment(uint8_batch)  # (B, 3, 32, 32)
    """

    def __init__(
        self,
        input_size: int = 224,
        min_scale: float = 0.08,
        max_scale: float = 1.0,
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        hf_prob: float = 0.5,
        vf_prob: float = 0.0,
        rr_prob: float = 0.0,
        rr_degrees: float | tuple[float, float] | None = None,
        cj_prob: float = 0.8,
        cj_strength: float = 1.0,
        cj_bright: float = 0.8,
        cj_contrast: float = 0.8,
        cj_sat: float = 0.8,
        cj_hue: float = 0.2,
        random_gray_scale: float = 0.2,
        gaussian_blur: float = 0.5,
        sigmas: tuple[float, float] = (0.1, 2.0),
        kernel_size: int | None = None,
        solarization: float = 0.0,
        normalize: dict | None = IMAGENET_NORMALIZE,
    ) -> None:
        super().__init__()
        for name, value in dict(hf_prob=hf_prob, vf_prob=vf_prob, rr_prob=rr_prob, cj_prob=cj_prob,
                                random_gray_scale=random_gray_scale, gaussian_blur=gaussian_blur, solarization=solarization).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability and must be in [0, 1], got {value}")
        if not 0.0 < min_scale <= max_scale <= 1.0:
            raise ValueError(f"need 0 < min_scale <= max_scale <= 1, got min_scale={min_scale}, max_scale={max_scale}")
        self.input_size = int(input_size)
        self.scale = (float(min_scale), float(max_scale))
        self.log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        self.hf_prob, self.vf_prob, self.rr_prob = hf_prob, vf_prob, rr_prob
        if rr_degrees is None:
            self.rr_range = None
        elif isinstance(rr_degrees, (int, float)):
            self.rr_range = (-float(rr_degrees), float(rr_degrees))
        else:
            self.rr_range = (float(rr_degrees[0]), float(rr_degrees[1]))
        self.cj_prob = cj_prob
        self.brightness = cj_strength * cj_bright
        self.contrast = cj_strength * cj_contrast
        self.saturation = cj_strength * cj_sat
        self.hue = min(0.5, cj_strength * cj_hue)
        self.gray_prob = random_gray_scale
        self.blur_prob = gaussian_blur
        self.sigmas = (float(sigmas[0]), float(sigmas[1]))
        self.kernel_size = kernel_size or blur_kernel_size(self.input_size)
        self.solarize_prob = solarization
        if normalize is not None:
            self.register_buffer("mean", torch.tensor(normalize["mean"], dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(normalize["std"], dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        else:
            self.mean = self.std = None

    # -- geometry ---------------------------------------------------------------------------
    def _crop_boxes(self, n: int, height: int, width: int, device: torch.device) -> torch.Tensor:
        """``(n, 4)`` random crop boxes ``(x0, y0, x1, y1)`` in pixels: area in ``scale``, aspect ratio in ``ratio``."""
        # As torchvision's RandomResizedCrop: up to 10 draws of (area, aspect ratio), the first
        # that fits the image wins; if none fits, the whole image.
        area = _uniform(n * 10, *self.scale, device).view(n, 10)
        r = _uniform(n * 10, *self.log_ratio, device).exp().view(n, 10)
        w_all, h_all = (area * r).sqrt(), (area / r).sqrt()
        fits = (w_all <= 1) & (h_all <= 1)
        first = fits.float().argmax(dim=1, keepdim=True)
        any_fit = fits.any(dim=1)
        w = torch.where(any_fit, w_all.gather(1, first).squeeze(1), torch.ones(n, device=device)) * width
        h = torch.where(any_fit, h_all.gather(1, first).squeeze(1), torch.ones(n, device=device)) * height
        x0 = torch.rand(n, device=device) * (width - w)
        y0 = torch.rand(n, device=device) * (height - h)
        return torch.stack([x0, y0, x0 + w, y0 + h], dim=1)

    def _crop(self, x: torch.Tensor) -> torch.Tensor:
        """Random resized crops of ``x`` at ``input_size``.

        ``roi_align`` with adaptive sampling: one bilinear sample per output pixel when the
        crop is enlarged (a full-size crop is the image itself), ``ceil(crop / output)``
        samples per axis when it is shrunk, which averages instead of aliasing.
        """
        from torchvision.ops import roi_align

        n, _, height, width = x.shape
        boxes = self._crop_boxes(n, height, width, x.device)
        index = torch.arange(n, device=x.device, dtype=x.dtype).view(n, 1)
        return roi_align(x, torch.cat([index, boxes.to(x.dtype)], 1), (self.input_size, self.input_size), 1.0, 0, True)

    def _flip_and_rotate(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if self.hf_prob > 0:
            x = torch.where((torch.rand(n, device=x.device) < self.hf_prob).view(n, 1, 1, 1), x.flip(3), x)
        if self.vf_prob > 0:
            x = torch.where((torch.rand(n, device=x.device) < self.vf_prob).view(n, 1, 1, 1), x.flip(2), x)
        if self.rr_prob > 0:  # right angles only here; other angles go through _affine
            turns = torch.randint(1, 4, (n,), device=x.device) * (torch.rand(n, device=x.device) < self.rr_prob)
            for k in (1, 2, 3):
                selected = (turns == k).view(n, 1, 1, 1)
                x = torch.where(selected, torch.rot90(x, k, (2, 3)), x)
        return x

    def _affine(self, n: int, height: int, width: int, device: torch.device) -> torch.Tensor:
        """``(n, 2, 3)`` matrices for crop + flips + rotation by any angle, for ``grid_sample``."""
        boxes = self._crop_boxes(n, height, width, device)
        w = (boxes[:, 2] - boxes[:, 0]) / width
        h = (boxes[:, 3] - boxes[:, 1]) / height
        cx = (boxes[:, 0] + boxes[:, 2]) / width - 1
        cy = (boxes[:, 1] + boxes[:, 3]) / height - 1
        sx = torch.where(torch.rand(n, device=device) < self.hf_prob, -w, w)
        sy = torch.where(torch.rand(n, device=device) < self.vf_prob, -h, h)
        rotate = torch.rand(n, device=device) < self.rr_prob
        angle = torch.where(rotate, _uniform(n, *self.rr_range, device) * (math.pi / 180), torch.zeros(n, device=device))
        cos, sin = angle.cos(), angle.sin()
        return torch.stack([torch.stack([cos * sx, -sin * sy, cx], 1), torch.stack([sin * sx, cos * sy, cy], 1)], 1)

    # -- colour -----------------------------------------------------------------------------
    def _jitter(self, x: torch.Tensor) -> torch.Tensor:
        n, device = x.shape[0], x.device
        apply = (torch.rand(n, device=device) < self.cj_prob).view(n, 1, 1, 1)

        def factor(strength: float) -> torch.Tensor:
            f = _uniform(n, max(0.0, 1 - strength), 1 + strength, device).view(n, 1, 1, 1)
            return torch.where(apply, f, torch.ones_like(f))

        if self.brightness > 0:
            x = (x * factor(self.brightness)).clamp_(0, 1)
        if self.contrast > 0:
            mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
            x = ((x - mean) * factor(self.contrast) + mean).clamp_(0, 1)
        if self.saturation > 0:
            gray = _gray(x)
            x = ((x - gray) * factor(self.saturation) + gray).clamp_(0, 1)
        if self.hue > 0:
            shift = _uniform(n, -self.hue, self.hue, device) * apply.view(n).float() * (2 * math.pi)
            x = self._rotate_hue(x, shift)
        return x

    @staticmethod
    def _rotate_hue(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
        """Rotate the chroma plane of YIQ by ``angle`` radians per sample."""
        to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=x.device, dtype=x.dtype)
        from_yiq = torch.linalg.inv(to_yiq)
        cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
        n = x.shape[0]
        rot = torch.zeros(n, 3, 3, device=x.device, dtype=x.dtype)
        rot[:, 0, 0] = 1
        rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
        matrix = from_yiq @ rot @ to_yiq  # (n, 3, 3)
        return torch.einsum("nij,njhw->nihw", matrix, x).clamp_(0, 1)

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        apply = torch.rand(n, device=x.device) < self.blur_prob
        if not bool(apply.any()):
            return x
        sigma = _uniform(n, *self.sigmas, x.device)
        k = self.kernel_size
        offsets = torch.arange(k, device=x.device, dtype=x.dtype) - (k - 1) / 2
        kernel = torch.exp(-(offsets.view(1, k) ** 2) / (2 * sigma.view(n, 1).to(x.dtype) ** 2))
        kernel = kernel / kernel.sum(dim=1, keepdim=True)
        identity = (offsets == 0).to(x.dtype).expand(n, k)
        kernel = torch.where(apply.view(n, 1), kernel, identity)
        # Separable blur as a weighted sum of shifted copies: per-sample kernels without a
        # grouped convolution (which is slow on CPUs), and cheap for the small kernels used here.
        pad = k // 2
        weights = kernel.view(n, 1, 1, 1, k)
        padded = F.pad(x, (pad, pad, 0, 0), mode="reflect")
        y = sum(padded[:, :, :, j : j + w] * weights[..., j] for j in range(k))
        padded = F.pad(y, (0, 0, pad, pad), mode="reflect")
        return sum(padded[:, :, j : j + h, :] * weights[..., j] for j in range(k))

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) image batch, got shape {tuple(images.shape)}")
        x = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
        n = x.shape[0]
        if self.rr_prob > 0 and self.rr_range is not None:
            theta = self._affine(n, x.shape[2], x.shape[3], x.device)
            grid = F.affine_grid(theta, [n, 3, self.input_size, self.input_size], align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        else:
            x = self._flip_and_rotate(self._crop(x))
        if self.cj_prob > 0:
            x = self._jitter(x)
        if self.gray_prob > 0:
            gray = (torch.rand(n, device=x.device) < self.gray_prob).view(n, 1, 1, 1)
            x = torch.where(gray, _gray(x).expand_as(x), x)
        if self.blur_prob > 0:
            x = self._blur(x)
        if self.solarize_prob > 0:
            solarize = (torch.rand(n, device=x.device) < self.solarize_prob).view(n, 1, 1, 1)
            x = torch.where(solarize & (x >= 0.5), 1.0 - x, x)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x


class BatchMultiViewAugment(nn.Module):
    """Apply each of ``augments`` to the same batch; returns the list of views (e.g. two for SimCLR, 2 + 6 for DINO)."""

    def __init__(self, augments: Sequence[BatchViewAugment]) -> None:
        super().__init__()
        if not augments:
            raise ValueError("BatchMultiViewAugment needs at least one augmentation")
        self.augments = nn.ModuleList(augments)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [augment(images) for augment in self.augments]


def _values(value: float | Sequence[float]) -> list[float]:
    return [float(v) for v in value] if isinstance(value, (list, tuple)) else [float(value)]


def _view(input_size: int, solarization_prob: float = 0.0, **kwargs) -> BatchViewAugment:
    # The per-image transforms call it solarization_prob; the batched one, solarization.
    return BatchViewAugment(input_size, solarization=solarization_prob, **kwargs)


def batch_two_view_augment(
    input_size: int = 224,
    gaussian_blur: float | Sequence[float] = 0.5,
    solarization_prob: float | Sequence[float] = 0.0,
    **kwargs,
) -> BatchMultiViewAugment:
    """Two views per image; ``gaussian_blur`` and ``solarization_prob`` may be ``(view 1, view 2)`` pairs
    (BYOL's asymmetric views). Other arguments as :class:`BatchViewAugment`."""
    blur, solarize = _values(gaussian_blur), _values(solarization_prob)
    return BatchMultiViewAugment(
        [_view(input_size, gaussian_blur=blur[min(i, len(blur) - 1)], solarization_prob=solarize[min(i, len(solarize) - 1)], **kwargs)
         for i in range(2)]
    )


def batch_multi_crop_augment(
    input_size: int = 224,
    n_global_views: int = 2,
    global_crop_scale: Sequence[float] = (0.4, 1.0),
    local_size: int | None = None,
    n_local_views: int = 6,
    local_crop_scale: Sequence[float] = (0.05, 0.4),
    gaussian_blur: float | Sequence[float] = 0.5,
    solarization_prob: float | Sequence[float] = 0.0,
    **kwargs,
) -> BatchMultiViewAugment:
    """Multi-crop views (DINO, SwaV): ``n_global_views`` at ``input_size``, then ``n_local_views`` at ``local_size``.

    Per-view probabilities follow :class:`~easyssl.transforms.dino.MultiCropTransform`: global view
    ``i`` takes ``values[i]``, local views the last value.
    """
    for key in ("min_scale", "max_scale"):  # the crop scales come from global/local_crop_scale
        kwargs.pop(key, None)
    blur, solarize = _values(gaussian_blur), _values(solarization_prob)
    pick = lambda values, i: values[min(i, len(values) - 1)] if len(values) > 1 else values[0]  # noqa: E731
    local = int(local_size) if local_size else default_local_size(input_size)
    views = [
        _view(input_size, min_scale=global_crop_scale[0], max_scale=global_crop_scale[1],
              gaussian_blur=pick(blur, i), solarization_prob=pick(solarize, i), **kwargs)
        for i in range(n_global_views)
    ] + [
        _view(local, min_scale=local_crop_scale[0], max_scale=local_crop_scale[1], gaussian_blur=blur[-1], solarization_prob=solarize[-1], **kwargs)
        for _ in range(n_local_views)
    ]
    return BatchMultiViewAugment(views)


def batch_crop_flip_augment(
    input_size: int = 224, min_scale: float = MAE_VIEW["min_scale"], hf_prob: float = MAE_VIEW["hf_prob"],
    normalize: dict | None = IMAGENET_NORMALIZE,
) -> BatchMultiViewAugment:
    """One view per image, crop and flip only (MAE)."""
    return BatchMultiViewAugment([BatchViewAugment(input_size, min_scale=min_scale, hf_prob=hf_prob, cj_prob=0.0, random_gray_scale=0.0,
                                                   gaussian_blur=0.0, normalize=normalize)])
