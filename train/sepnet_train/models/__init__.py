"""Model registry: ``create_model(name)`` and the facts each model is trained / exported with.

One file per model family (``sepnet.py``, ``resnet_cifar.py``). Every model implements
``export_graph(g)`` to describe itself to the exporter (``sepnet_train.export``).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import resnet_cifar, sepnet


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: object
    dataset: str  # "cifar10" or "imagenet"
    input_size: int
    num_classes: int


REGISTRY: dict[str, ModelSpec] = {
    "sepnet_small": ModelSpec("sepnet_small", sepnet.sepnet_small, "imagenet", 224, 1000),
    "sepnet_large": ModelSpec("sepnet_large", sepnet.sepnet_large, "imagenet", 224, 1000),
    "sepnet_cifar": ModelSpec("sepnet_cifar", sepnet.sepnet_cifar, "cifar10", 32, 10),
    "resnet20": ModelSpec("resnet20", resnet_cifar.resnet20, "cifar10", 32, 10),
    "resnet32": ModelSpec("resnet32", resnet_cifar.resnet32, "cifar10", 32, 10),
    "resnet44": ModelSpec("resnet44", resnet_cifar.resnet44, "cifar10", 32, 10),
    "resnet56": ModelSpec("resnet56", resnet_cifar.resnet56, "cifar10", 32, 10),
    **{f"resnet{d}_proj3": ModelSpec(f"resnet{d}_proj3", getattr(resnet_cifar, f"resnet{d}_proj3"),
                                     "cifar10", 32, 10) for d in (20, 32, 44, 56)},
}


def list_models() -> list[str]:
    return sorted(REGISTRY)


def get_spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return REGISTRY[name]


def create_model(name: str, num_classes: int | None = None, **kwargs):
    spec = get_spec(name)
    return spec.builder(num_classes=num_classes or spec.num_classes, **kwargs)


def count_weights(model) -> int:
    """Learned weights the paper counts: conv/linear weights and biases (no BN statistics)."""
    import torch.nn as nn
    n = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            n += m.weight.numel() + (m.bias.numel() if m.bias is not None else 0)
    return n
