"""Settings of the CNN trainer, importable without torch (the project file is checked early)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from monalia.api.plugin import PluginSettings
from monalia.learning.backbones import BACKBONES, OFFLINE_BACKBONE

# Settings that change how fast a training runs, not what it learns.
RUNTIME_SETTINGS = ("device", "workers", "cache")
LEARNING_RATE, LR_STEP = 0.001, 4  # MonaLIA's, for a backbone that learns
FROZEN_LEARNING_RATE = 0.01  # a head alone on frozen features


class CnnSettings(PluginSettings):
    """Settings of the CNN trainer; the defaults are MonaLIA's (Adam, lr 0.001 ×0.1 every 4
    epochs, 20 epochs, dropout 0.5) on the offline backbone.

    A frozen backbone (only the head learns) has its own defaults, lr 0.01 and no decay before
    the last epoch: with MonaLIA's, the head stops learning after a few epochs (test mAP 0.56
    where these reach 0.99 on real paintings). Set either to keep it.
    """

    # the network (efficientnet_lite0 has packaged ImageNet weights)
    backbone: str = OFFLINE_BACKBONE
    # "imagenet" (the package's or torch's cached weights), a state-dict path, or "none"
    weights: str = "imagenet"
    input_size: int | None = Field(default=None, ge=32)  # default: the backbone's own
    epochs: int = Field(default=20, ge=1)  # passes over the training images, at most
    batch_size: int = Field(default=32, ge=1)  # images per step
    learning_rate: float = Field(default=LEARNING_RATE, gt=0)  # unset: by freeze_backbone
    lr_step: int = Field(default=LR_STEP, ge=1)  # epochs between decays; unset: by freeze
    # the learning rate's factor every lr_step epochs
    lr_gamma: float = Field(default=0.1, gt=0, le=1)
    weight_decay: float = Field(default=0.0, ge=0)  # Adam's L2 penalty
    dropout: float = Field(default=0.5, ge=0, lt=1)  # before the classifier
    loss: Literal["bce", "focal"] = "bce"  # bce, or focal for rare classes
    focal_gamma: float = Field(default=2.0, ge=0)  # the focal loss's focusing gamma
    focal_alpha: float = -1.0  # < 0: no class balancing (RetinaNet used 0.25)
    # "none", "auto" (negatives/positives per class, at most pos_weight_max), or per class URI
    pos_weight: Literal["none", "auto"] | dict[str, float] = "none"
    pos_weight_max: float = Field(default=10.0, gt=0)  # with pos_weight auto, the largest weight
    freeze_backbone: bool = False  # train the head only
    patience: int = Field(default=5, ge=0)  # epochs without a better val mAP; 0: never stop early
    # the least gain in val mAP that counts as better (at an equal mAP: the least drop in loss)
    min_delta: float = Field(default=0.001, ge=0)
    beta: float = Field(default=1.0, gt=0)  # thresholds maximise F-beta on validation
    # how scores are calibrated on validation: "auto" measures and picks (monalia.learning.calibration)
    calibration: Literal["auto", "none", "temperature", "platt"] = "auto"
    seed: int = 0  # the same seed, the same training
    device: str = "auto"  # auto: CUDA when there is one
    workers: int | None = Field(default=None, ge=0)  # loader processes; default by device
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"  # CUDA only
    channels_last: bool = True  # NHWC memory layout (faster on CUDA and on the CPU)
    augment: bool = True  # augment the training images (the settings below)
    crop_scale: tuple[float, float] = (0.5, 1.0)  # random resized crop: the share of the area kept
    flip: bool = True  # random horizontal flips
    rotation: float = Field(default=5.0, ge=0, le=45)  # random rotation, in degrees, at most
    # brightness, contrast and saturation jitter
    color_jitter: float = Field(default=0.2, ge=0, le=1)
    grayscale: float = Field(default=0.1, ge=0, le=1)  # the share of images turned grey
    cache: bool = True  # keep resized copies of the images

    @model_validator(mode="before")
    @classmethod
    def _defaults_by_freezing(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        values = dict(values)
        frozen = bool(values.get("freeze_backbone", False))
        if values.get("learning_rate") is None:
            values["learning_rate"] = FROZEN_LEARNING_RATE if frozen else LEARNING_RATE
        if values.get("lr_step") is None:
            values["lr_step"] = int(values.get("epochs", 20)) if frozen else LR_STEP
        return values

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, value: str) -> str:
        if value not in BACKBONES:
            raise ValueError(f"unknown backbone {value!r}: one of {', '.join(BACKBONES)}")
        return value

    def identity(self) -> dict[str, Any]:
        """The settings that decide what is learnt (not where or how fast)."""
        return self.model_dump(mode="json", exclude=set(RUNTIME_SETTINGS))
