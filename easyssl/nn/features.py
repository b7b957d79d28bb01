"""The feature size of any backbone, found by running it once on a dummy batch.

easyssl's heads (projection, prediction, prototypes) need the size of the backbone's
feature vector. Its own backbones say it (``num_features``); a module from elsewhere (timm,
torchvision, your own) may not, or may say something else than what its ``forward``
returns (a ResNet's ``fc.in_features`` is 512 whatever the width it was built with, a
model with a classifier returns class scores). Running the module once at the training
input size is the one answer that is always right, so every path that needs the size
(:func:`easyssl.nn.external.wrap_backbone`, LightlySSL-style ``num_ftrs``) asks
:func:`feature_dim`.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["feature_dim", "pool_features", "dry_forward"]


def pool_features(output: torch.Tensor) -> torch.Tensor:
    """A backbone's output as ``(N, D)`` feature vectors: ``(N, C, H, W)`` maps are average-pooled over
    ``H, W``, ``(N, D)`` is used as is; anything else raises ``ValueError`` saying what to return."""
    if not isinstance(output, torch.Tensor):
        raise ValueError(
            f"the backbone returned a {type(output).__name__}, not a tensor: wrap it in a module whose forward returns "
            "the features, (N, D) vectors or (N, C, H, W) maps"
        )
    if output.dim() == 4:
        return output.mean(dim=(2, 3))
    if output.dim() == 2:
        return output
    raise ValueError(
        f"the backbone returned a tensor of shape {tuple(output.shape)}; easyssl takes (N, D) feature vectors or "
        "(N, C, H, W) feature maps (pooled): for token outputs (N, L, D), return the class token or the tokens' mean"
    )


def _first_device(module: nn.Module) -> torch.device:
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")


def dry_forward(module: nn.Module, input_size: int | tuple[int, int] = 224, in_channels: int = 3) -> torch.Tensor:
    """``module``'s output on a dummy batch of two ``in_channels x input_size`` images, in eval mode and without
    gradient, on the module's device (its training mode is restored afterwards).

    Two images, not one: some modules reshape with ``squeeze()``, which a batch of one breaks.
    Eval mode, so that batch-norm statistics and dropout are left untouched.
    """
    height, width = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            dummy = torch.zeros(2, in_channels, int(height), int(width), device=_first_device(module))
            try:
                return module(dummy)
            except Exception as error:  # the user's module: say what was tried, keep its own message
                raise ValueError(
                    f"could not find the backbone's feature size: {type(module).__name__} failed on a dummy batch of shape "
                    f"{tuple(dummy.shape)} (the training input size): {type(error).__name__}: {error}"
                ) from error
    finally:
        module.train(was_training)


def feature_dim(module: nn.Module, input_size: int | tuple[int, int] = 224, in_channels: int = 3) -> int:
    """The size ``D`` of the feature vectors ``module`` gives for images of ``input_size`` pixels.

    One forward pass on a dummy batch (see :func:`dry_forward`); ``(N, C, H, W)`` outputs count
    ``C`` (easyssl pools them, see :func:`pool_features`), ``(N, D)`` outputs ``D``.

    Example:
        >>> feature_dim(torchvision.models.resnet18(num_classes=10), 32)   # its classifier's output
        10
    """
    return int(pool_features(dry_forward(module, input_size, in_channels)).shape[1])
