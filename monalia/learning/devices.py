"""Which torch device a model runs on (torch is imported only when asked)."""

from __future__ import annotations

from typing import Any

from monalia.errors import ConfigError


def resolve_device(requested: str) -> Any:
    """`auto` picks CUDA when there is one; asking for CUDA where there is none is an error."""
    import torch

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ConfigError(f"unknown device {requested!r} (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {requested!r} asked for, but this machine has no CUDA GPU")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {requested!r}: this machine has {torch.cuda.device_count()} GPU(s)"
            )
    return device
