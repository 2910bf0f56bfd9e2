from alex.heads.perceiver.configuration_perceiver import PerceiverHeadConfig
from alex.heads.perceiver.modeling_perceiver import PerceiverHead

__all__ = ["PerceiverHeadConfig", "PerceiverHead"]
