"""Building blocks shared by the view transforms: normalisation constants and the multi-view wrapper."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torchvision.transforms import v2

#: ImageNet's per-channel mean and std, the default normalisation.
IMAGENET_NORMALIZE: dict[str, tuple[float, float, float]] = {
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
}


#: Blur kernel and sigma range, flips and rotation of the crop-based views: every method's preset
#: starts from these (the papers' values; rotation off).
GEOMETRY: dict[str, Any] = dict(kernel_size=None, sigmas=(0.1, 2.0), vf_prob=0.0, hf_prob=0.5, rr_prob=0.0, rr_degrees=None)


def blur_kernel_size(input_size: int) -> int:
    """An odd Gaussian-blur kernel of about 10% of the image side (SimCLR's choice), at least 3."""
    return max(3, int(0.1 * input_size) // 2 * 2 + 1)


def to_tensor_transforms(normalize: dict | None) -> list[Callable]:
    """PIL/uint8 -> float tensor in [0, 1], then ``Normalize(**normalize)`` unless ``normalize`` is None."""
    steps: list[Callable] = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    if normalize is not None:
        steps.append(v2.Normalize(mean=list(normalize["mean"]), std=list(normalize["std"])))
    return steps


class MultiViewTransform:
    """Apply each of ``transforms`` to the same image and return the list of views.

    Example:
        >>> two_views = MultiViewTransform([view_a, view_b])
        >>> views = two_views(pil_image)  # [view_a(pil_image), view_b(pil_image)]
    """

    def __init__(self, transforms: Sequence[Callable]) -> None:
        if len(transforms) == 0:
            raise ValueError("MultiViewTransform needs at least one transform")
        self.transforms = list(transforms)

    def __call__(self, image: Any) -> list[Any]:
        return [transform(image) for transform in self.transforms]

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(t) for t in self.transforms)
        return f"{type(self).__name__}([\n  {inner}\n])"


class EvalTransform:
    """Deterministic transform for embedding: resize the short side, centre crop, normalise.

    Args:
        input_size: Side of the square output, in pixels (the training input size).
        normalize: ``{"mean": ..., "std": ...}`` or None for no normalisation.

    Example:
        >>> tensor = EvalTransform(input_size=64)(pil_image)  # (3, 64, 64) float32
    """

    def __init__(self, input_size: int = 224, normalize: dict | None = IMAGENET_NORMALIZE) -> None:
        if input_size < 1:
            raise ValueError(f"input_size must be a positive number of pixels, got {input_size}")
        self.input_size = int(input_size)
        #: The image resized and cropped, still ``uint8`` for a PIL image (:meth:`pixels`).
        self.resize_crop = v2.Compose([v2.ToImage(), v2.Resize(self.input_size, antialias=True), v2.CenterCrop(self.input_size)])
        #: Pixels to normalised floats, for one image or a batch, on any device (:meth:`finish`).
        self.to_float = v2.Compose(to_tensor_transforms(normalize)[1:])
        self.transform = v2.Compose([self.resize_crop, self.to_float])

    def __call__(self, image: Any) -> torch.Tensor:
        return self.transform(image)

    def pixels(self, image: Any) -> torch.Tensor:
        """The first half of the transform: ``(3, S, S)`` resized and centre-cropped, ``uint8`` for a PIL image.

        A loader that ships these (a quarter of the bytes of floats) and calls :meth:`finish` on the batch where
        the model runs gets exactly ``self(image)``: ``finish(torch.stack([pixels(a), pixels(b)]))`` equals
        ``torch.stack([self(a), self(b)])``.
        """
        return self.resize_crop(image)

    def finish(self, pixels: torch.Tensor) -> torch.Tensor:
        """The second half: ``uint8`` pixels, of one image or a ``(B, 3, S, S)`` batch, to normalised float32."""
        return self.to_float(pixels)

    def __repr__(self) -> str:
        return f"EvalTransform(input_size={self.input_size}, transform={self.transform})"


def check_probability(**values: float) -> None:
    """Raise a ``ValueError`` naming the first of ``values`` outside ``[0, 1]``."""
    for name, value in values.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} is a probability and must be in [0, 1], got {value}")


class _RandomRightAngle(torch.nn.Module):
    """Rotate by 90, 180 or 270 degrees, uniformly (used when ``rr_degrees`` is None)."""

    def forward(self, image: Any) -> Any:
        k = int(torch.randint(1, 4, ()).item())
        return v2.functional.rotate(image, 90.0 * k, expand=True)


class RandomSolarization(torch.nn.Module):
    """Solarize (invert the pixels above a threshold) with probability ``p``.

    The threshold is half of the pixel range: 128 for ``uint8`` images, 0.5 for float images
    in ``[0, 1]``, so it works before or after the conversion to float.
    """

    def __init__(self, p: float = 0.2) -> None:
        super().__init__()
        check_probability(solarization_prob=p)
        self.p = p

    def forward(self, image: Any) -> Any:
        if self.p <= 0 or torch.rand(()) >= self.p:
            return image
        dtype = getattr(image, "dtype", torch.uint8)
        threshold = 128 if dtype == torch.uint8 else 0.5
        return v2.functional.solarize(image, threshold)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def view_steps(
    input_size: int,
    min_scale: float = 0.08,
    max_scale: float = 1.0,
    cj_prob: float = 0.8,
    cj_strength: float = 1.0,
    cj_bright: float = 0.4,
    cj_contrast: float = 0.4,
    cj_sat: float = 0.2,
    cj_hue: float = 0.1,
    random_gray_scale: float = 0.2,
    gaussian_blur: float = 0.5,
    kernel_size: int | None = None,
    sigmas: Sequence[float] = (0.1, 2.0),
    solarization_prob: float = 0.0,
    vf_prob: float = 0.0,
    hf_prob: float = 0.5,
    rr_prob: float = 0.0,
    rr_degrees: float | tuple[float, float] | None = None,
    normalize: dict | None = IMAGENET_NORMALIZE,
) -> v2.Compose:
    """One augmented view: crop, flips, rotation, colour jitter, grayscale, blur, solarization, to float, normalise.

    The one builder of single views: SimCLR's, MoCo's, BYOL's, DINO's and SwaV's transforms
    are all made of it. Arguments as in :class:`~easyssl.transforms.SimCLRViewTransform`,
    plus ``max_scale`` (largest crop area) and ``solarization_prob``.
    """
    check_probability(cj_prob=cj_prob, random_gray_scale=random_gray_scale, gaussian_blur=gaussian_blur,
                       solarization_prob=solarization_prob, vf_prob=vf_prob, hf_prob=hf_prob, rr_prob=rr_prob)
    if not 0.0 < min_scale <= max_scale <= 1.0:
        raise ValueError(f"crop scales must satisfy 0 < min_scale <= max_scale <= 1, got ({min_scale}, {max_scale})")
    if input_size < 1:
        raise ValueError(f"input_size must be a positive number of pixels, got {input_size}")
    steps: list[Any] = [v2.ToImage(), v2.RandomResizedCrop(input_size, scale=(min_scale, max_scale), antialias=True)]
    if hf_prob > 0:
        steps.append(v2.RandomHorizontalFlip(p=hf_prob))
    if vf_prob > 0:
        steps.append(v2.RandomVerticalFlip(p=vf_prob))
    if rr_prob > 0:
        rotation = _RandomRightAngle() if rr_degrees is None else v2.RandomRotation(rr_degrees)
        steps.append(v2.RandomApply([rotation], p=rr_prob))
    if cj_prob > 0:
        jitter = v2.ColorJitter(
            brightness=cj_strength * cj_bright,
            contrast=cj_strength * cj_contrast,
            saturation=cj_strength * cj_sat,
            hue=min(0.5, cj_strength * cj_hue),
        )
        steps.append(v2.RandomApply([jitter], p=cj_prob))
    if random_gray_scale > 0:
        steps.append(v2.RandomGrayscale(p=random_gray_scale))
    if gaussian_blur > 0:
        kernel = kernel_size if kernel_size is not None else blur_kernel_size(input_size)
        steps.append(v2.RandomApply([v2.GaussianBlur(kernel, sigma=tuple(sigmas))], p=gaussian_blur))
    if solarization_prob > 0:
        steps.append(RandomSolarization(p=solarization_prob))
    return v2.Compose(steps + to_tensor_transforms(normalize)[1:])
