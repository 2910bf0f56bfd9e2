from alex.heads.probe.configuration_probe import ProbeConfig
from alex.heads.probe.modeling_probe import AttentiveProbe

__all__ = ["ProbeConfig", "AttentiveProbe"]
