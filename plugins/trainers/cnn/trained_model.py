"""Loading a trained CNN back from the folder `monalia train` wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monalia.api.trainer import model_weights, read_model_card
from monalia.learning.backbones import build_model


def load_trained_model(model_dir: Path, device: Any = "cpu") -> tuple[Any, dict[str, Any]]:
    """A trained model and its card, from the folder `monalia train` wrote (weights only)."""
    import torch

    card = read_model_card(model_dir)
    settings = card.get("settings", {})
    model = build_model(
        card["backbone"], len(card["classes"]), settings.get("dropout", 0.5), weights=None
    )
    weights = model_weights(model_dir, card)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.to(device).eval()
    return model, card
