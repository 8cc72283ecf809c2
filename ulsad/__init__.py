"""ULSAD: unified logical and structural anomaly detection (a readable PyTorch reproduction)."""
__version__ = "0.1.0"

from .config import PROFILES, VARIANTS, Config, get_config  # noqa: E402
from .detector import ULSAD  # noqa: E402
from .train import fit, pick_device  # noqa: E402

__all__ = ["Config", "PROFILES", "VARIANTS", "ULSAD", "fit", "get_config", "pick_device"]
