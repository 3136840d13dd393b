"""The /model buttons' callback data: model keys, and the short form for long keys."""

from __future__ import annotations

from handlers.commands import model_button_data, model_key_of
from providers.catalogue import Catalogue, ModelInfo, PlatformInfo

LONG = "a-very-long-model-name-served-by-a-custom-vllm-endpoint-v2"
MODELS = [
    ModelInfo(key=f"lab:{name}", platform="lab", model=name, display_name=name)
    for name in ("short", LONG)
]
CATALOGUE = Catalogue([PlatformInfo("lab", "Lab", "openai", "http://lab")], MODELS, enabled=["lab"])


def test_short_key_round_trips() -> None:
    """A key that fits 64 bytes is carried as is and read back as is."""
    data = model_button_data(42, "lab:short", "lab", 0)
    assert data == "m|42|lab:short"
    assert model_key_of(data.split("|", 2)[2], CATALOGUE) == "lab:short"


def test_long_key_uses_platform_and_index() -> None:
    """A key past the 64-byte limit becomes #platform#index and still names the model."""
    data = model_button_data(42, f"lab:{LONG}", "lab", 1)
    assert len(data.encode()) <= 64 and data == "m|42|#lab#1"
    assert model_key_of(data.split("|", 2)[2], CATALOGUE) == f"lab:{LONG}"


def test_unknown_short_form_names_nothing() -> None:
    """A short form pointing nowhere (a changed catalogue, a forged press) gives ""."""
    assert model_key_of("#lab#7", CATALOGUE) == ""
    assert model_key_of("#nowhere#0", CATALOGUE) == ""
    assert model_key_of("#lab#x", CATALOGUE) == ""
