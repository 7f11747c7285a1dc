"""Loading a trained CNN back from the folder `monalia train` wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monalia.api.trainer import read_model_card
from monalia.errors import MonaliaError
from monalia.lib.backbones import build_model
from monalia.lib.hashing import file_sha256


def load_trained_model(model_dir: Path, device: Any = "cpu") -> tuple[Any, dict[str, Any]]:
    """A trained model and its card, from the folder `monalia train` wrote (weights only)."""
    import torch

    card = read_model_card(model_dir)
    settings = card.get("settings", {})
    model = build_model(
        card["backbone"], len(card["classes"]), settings.get("dropout", 0.5), weights=None
    )
    weights = model_dir / card["weights"]
    if not weights.is_file():
        raise MonaliaError(f"the weights of model {card.get('name')} are missing: {weights}")
    expected = card.get("weights_sha256")
    if expected and file_sha256(weights) != expected:
        raise MonaliaError(
            f"{weights} is not the file its model card describes (SHA-256 differs): "
            "retrain the model or restore its weights"
        )
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.to(device).eval()
    return model, card
