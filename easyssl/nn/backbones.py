"""Backbones: networks that turn an image batch ``(B, 3, H, W)`` into feature vectors ``(B, num_features)``.

``backbone("resnet-18")`` is the factory; ResNets are built from torchvision's blocks with
torchvision's parameter names, so a width-1 ResNet with the standard stem exports weights
that ``torchvision.models.resnet18().load_state_dict`` accepts. The Vision Transformers of
:mod:`easyssl.nn.vit` (``vit-tiny``, ``vit-small``, ``vit-b-16``...) are in the registry from
the start.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from easyssl.nn.external import external_backbone, is_external_name
from easyssl.nn.vit import VIT_BACKBONES
from easyssl.runtime.suggest import did_you_mean

#: ``name: (block, blocks per stage)`` of the ResNets (torchvision's layouts; ResNet-10, one block per stage, is
#: torchvision's ``ResNet(BasicBlock, [1, 1, 1, 1])``: half of ResNet-18's convolutions, so about half the backbone's operations per step).
RESNETS: dict[str, tuple[type[nn.Module], list[int]]] = {
    "resnet-10": (BasicBlock, [1, 1, 1, 1]),
    "resnet-18": (BasicBlock, [2, 2, 2, 2]),
    "resnet-34": (BasicBlock, [3, 4, 6, 3]),
    "resnet-50": (Bottleneck, [3, 4, 6, 3]),
    "resnet-101": (Bottleneck, [3, 4, 23, 3]),
    "resnet-152": (Bottleneck, [3, 8, 36, 3]),
}

#: Inputs at most this many pixels wide get the small-image stem by default (and the
#: small-image rules of :mod:`easyssl.defaults`): the one name of this threshold.
SMALL_INPUT_MAX_SIZE = 64


class ResNet(nn.Module):
    """A ResNet feature extractor (He et al., 2016) with a width multiplier and an optional small-image stem.

    The standard stem is a 7x7 stride-2 convolution and a max-pool (for 224 px photos); the
    small-image stem is a 3x3 stride-1 convolution without max-pool, as used for CIFAR,
    so 32-64 px inputs keep their spatial detail. Returns globally average-pooled
    features of size ``num_features`` (512 * width for resnet-10/18/34, 2048 * width for
    resnet-50 and deeper).

    Args:
        block: ``torchvision.models.resnet.BasicBlock`` or ``Bottleneck``.
        layers: Number of blocks in each of the four stages.
        width: Multiplier of every stage's channel count (1.0 = torchvision's ResNet).
        small_input: Use the small-image stem.
        in_channels: Channels of the input images.
        zero_init_residual: Zero-init the last BN of each block (helps large-batch training).
        pooled_stages: The features are the globally pooled outputs of this many last stages,
            concatenated (1: the last stage's alone, torchvision's features; up to 4). The
            earlier stage keeps finer detail than the last one's few pixels, which helps small
            images: see :func:`easyssl.defaults.default_pooled_stages`.
    """

    #: torchvision's classifier, which this feature extractor lacks: a torchvision ResNet's weights file
    #: loads with these keys ignored (``model={"weights": ...}``, see :mod:`easyssl.nn.weights`).
    dropped_head = ("fc.",)

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: list[int],
        width: float = 1.0,
        small_input: bool = False,
        in_channels: int = 3,
        zero_init_residual: bool = False,
        pooled_stages: int = 1,
    ) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        if pooled_stages not in (1, 2, 3, 4):
            raise ValueError(f"pooled_stages must be 1, 2, 3 or 4 (how many last stages the features pool), got {pooled_stages!r}")
        base = max(8, int(round(64 * width)))
        self.inplanes = base
        self.small_input = small_input
        if small_input:
            self.conv1 = nn.Conv2d(in_channels, base, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, base, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, base, layers[0])
        self.layer2 = self._make_layer(block, base * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, base * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, base * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.pooled_stages = pooled_stages
        self.num_features = sum(base * 2**i * block.expansion for i in range(4 - pooled_stages, 4))

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, Bottleneck):
                    nn.init.constant_(module.bn3.weight, 0)
                elif isinstance(module, BasicBlock):
                    nn.init.constant_(module.bn2.weight, 0)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map ``(B, C, h, w)`` (before pooling; ``C == num_features`` when ``pooled_stages`` is 1)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The features ``(B, num_features)``: the pooled outputs of the last ``pooled_stages`` stages, concatenated."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        pooled = []
        for i, stage in enumerate((self.layer1, self.layer2, self.layer3, self.layer4)):
            x = stage(x)
            if i >= 4 - self.pooled_stages:
                pooled.append(torch.flatten(self.avgpool(x), 1))
        return pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=1)


def _resnet_factory(name: str) -> Callable[..., ResNet]:
    block, layers = RESNETS[name]

    def build(width: float = 1.0, small_input: bool = False, **kwargs) -> ResNet:
        return ResNet(block, layers, width=width, small_input=small_input, **kwargs)

    build.__name__ = name.replace("-", "")
    build.__doc__ = f"{name} feature extractor; see :class:`ResNet` for the arguments."
    return build


#: Backbone factories by name: the ResNets and the ViTs. Each takes ``(width, small_input, **kwargs)``
#: (ViTs also ``input_size``) and returns a module with a ``num_features`` attribute.
BACKBONES: dict[str, Callable[..., nn.Module]] = {
    **{name: _resnet_factory(name) for name in RESNETS},
    **VIT_BACKBONES,
}


def register_backbone(name: str, factory: Callable[..., nn.Module]) -> None:
    """Make ``factory`` available as ``backbone(name)``; it must return a module with ``num_features``."""
    BACKBONES[name] = factory


def register_vit_backbones() -> None:
    """Put the ViT factories of :mod:`easyssl.nn.vit` (back) into the registry.

    They are there from the start; kept for code written when they had to be registered
    (and to restore them after a ``register_backbone`` replaced one).
    """
    BACKBONES.update(VIT_BACKBONES)


def available_backbones() -> list[str]:
    """Names accepted by :func:`backbone`."""
    return sorted(BACKBONES)


def backbone(
    name: str = "resnet-18",
    width: float = 1.0,
    small_input: bool | None = None,
    input_size: int | None = None,
    pooled_stages: int = 1,
    **kwargs,
) -> nn.Module:
    """Build a backbone by name, e.g. ``backbone("resnet-50", width=2)``.

    Args:
        name: One of :func:`available_backbones` (``resnet-10/18/34/50/101/152``, ``vit-tiny``,
            ``vit-small``, ``vit-b-16``...). ``resnet18`` and ``ResNet-18`` spellings are accepted too.
        width: Channel multiplier.
        small_input: Small-image stem (3x3 conv, no max-pool). None chooses it when
            ``input_size`` is at most :data:`SMALL_INPUT_MAX_SIZE` pixels.
        input_size: Training image size, used to choose the stem (and patching for ViTs).
        pooled_stages: For the ResNets, how many last stages' pooled outputs make the features
            (see :class:`ResNet`); other backbones take 1 only.
        **kwargs: Passed to the factory.

    Returns:
        An ``nn.Module`` mapping ``(B, 3, H, W)`` to ``(B, num_features)``, with ``num_features`` set.

    ``name`` may also be an ``nn.Module``, ``"timm/<name>"`` or ``"torchvision/<name>"``:
    see :mod:`easyssl.nn.external` (wrapped, ``num_features`` found by a dry forward at ``input_size``).
    """
    if pooled_stages != 1 and not (isinstance(name, str) and _normalise_name(name).startswith("resnet")):
        raise ValueError(f"pooled_stages={pooled_stages!r} applies to easyssl's ResNets only, not to backbone {name!r}: leave it at 1")
    if is_external_name(name):  # modules, timm and torchvision models: easyssl.nn.external
        return external_backbone(name, width=width, input_size=input_size, **kwargs)
    key = _normalise_name(name)
    if key not in BACKBONES:
        hint = did_you_mean(str(name), available_backbones()) or f" (a timm or torchvision model? name it `timm/{name}` or `torchvision/{name}`)"
        raise ValueError(f"unknown backbone {name!r}{hint}; choose one of: {', '.join(available_backbones())}")
    if small_input is None:
        small_input = input_size is not None and input_size <= SMALL_INPUT_MAX_SIZE
    factory = BACKBONES[key]
    if key.startswith("vit"):
        return factory(width=width, small_input=small_input, input_size=input_size, **kwargs)
    return factory(width=width, small_input=small_input, pooled_stages=pooled_stages, **kwargs)


def _normalise_name(name: str) -> str:
    key = name.lower().replace("_", "-")
    if key in BACKBONES:
        return key
    for known in BACKBONES:  # "resnet18" -> "resnet-18"
        if known.replace("-", "") == key.replace("-", ""):
            return known
    return key
