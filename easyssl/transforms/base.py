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
        self.transform = v2.Compose(
            [v2.ToImage(), v2.Resize(self.input_size, antialias=True), v2.CenterCrop(self.input_size)]
            + to_tensor_transforms(normalize)[1:]
        )

    def __call__(self, image: Any) -> torch.Tensor:
        return self.transform(image)

    def __repr__(self) -> str:
        return f"EvalTransform(input_size={self.input_size}, transform={self.transform})"
