"""PyTorch model definitions (training/export side). Importing this package needs torch."""
from .registry import MethodConfig, create_model, get_config, list_models, register_model

__all__ = ["MethodConfig", "create_model", "get_config", "list_models", "register_model"]
