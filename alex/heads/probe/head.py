"""The probe on the one training path: a classifier (``alex.heads.classifier``)."""

from alex.heads.classifier import ClassifierFamily
from alex.heads.probe.options import ProbeOptions


class ProbeFamily(ClassifierFamily):
    name = "probe"
    options_class = ProbeOptions
    model_types = ("alex_probe",)

    def classes(self):
        from alex.heads.probe.configuration_probe import ProbeConfig
        from alex.heads.probe.modeling_probe import AttentiveProbe

        return ProbeConfig, AttentiveProbe


HEAD = ProbeFamily()
