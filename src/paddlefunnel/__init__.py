"""paddlefunnel: Funnel-Transformer (Dai et al., 2020) for PaddlePaddle."""

from .config import FunnelConfig, preset_names

__version__ = "0.1.0"

__all__ = ["FunnelConfig", "preset_names", "__version__"]
