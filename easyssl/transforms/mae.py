"""MAE's augmentation (He et al., 2022): one random-resized crop and a horizontal flip."""

from __future__ import annotations

from typing import Any

from torchvision.transforms import v2

from easyssl.transforms.base import IMAGENET_NORMALIZE, MultiViewTransform, check_probability, to_tensor_transforms

#: MAE's view: a random-resized crop from 20% of the image and a horizontal flip, nothing else.
MAE_VIEW: dict[str, Any] = dict(min_scale=0.2, hf_prob=0.5)


class MAEViewTransform:
    """Random-resized crop (area ``min_scale``-1), horizontal flip, to float, normalise."""

    def __init__(
        self, input_size: int = 224, min_scale: float = MAE_VIEW["min_scale"], hf_prob: float = MAE_VIEW["hf_prob"],
        normalize: dict | None = IMAGENET_NORMALIZE,
    ) -> None:
        check_probability(hf_prob=hf_prob)
        if not 0.0 < min_scale <= 1.0:
            raise ValueError(f"min_scale must be in (0, 1], got {min_scale}")
        if input_size < 1:
            raise ValueError(f"input_size must be a positive number of pixels, got {input_size}")
        steps: list[Any] = [v2.ToImage(), v2.RandomResizedCrop(input_size, scale=(min_scale, 1.0), antialias=True)]
        if hf_prob > 0:
            steps.append(v2.RandomHorizontalFlip(p=hf_prob))
        self.transform = v2.Compose(steps + to_tensor_transforms(normalize)[1:])

    def __call__(self, image: Any) -> Any:
        return self.transform(image)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transform})"


class MAETransform(MultiViewTransform):
    """MAE's single view, as a one-element list (so it batches like the other methods' views).

    Example:
        >>> (view,) = MAETransform(input_size=64)(pil_image)
    """

    def __init__(
        self, input_size: int = 224, min_scale: float = MAE_VIEW["min_scale"], hf_prob: float = MAE_VIEW["hf_prob"],
        normalize: dict | None = IMAGENET_NORMALIZE,
    ) -> None:
        self.input_size = input_size
        super().__init__([MAEViewTransform(input_size, min_scale=min_scale, hf_prob=hf_prob, normalize=normalize)])
