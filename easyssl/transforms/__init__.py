"""View transforms: random augmented views of each image for each SSL method, and the evaluation transform."""

from easyssl.transforms.base import IMAGENET_NORMALIZE, EvalTransform, MultiViewTransform
from easyssl.transforms.simclr import SimCLRTransform, SimCLRViewTransform

__all__ = ["IMAGENET_NORMALIZE", "EvalTransform", "MultiViewTransform", "SimCLRTransform", "SimCLRViewTransform"]
