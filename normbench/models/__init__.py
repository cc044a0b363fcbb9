"""Models that take a norm factory, so any registry norm fills every norm slot."""

from normbench.models.blocks import NormFactory
from normbench.models.registry import available_models, create_model

__all__ = ["NormFactory", "available_models", "create_model"]
