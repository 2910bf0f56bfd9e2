"""The Perceiver classifier on the one training path: a classifier (``alex.heads.classifier``)."""

from alex.heads.classifier import ClassifierFamily
from alex.heads.perceiver.options import PerceiverOptions


class PerceiverFamily(ClassifierFamily):
    name = "perceiver"
    options_class = PerceiverOptions
    model_types = ("alex_perceiver",)

    def classes(self):
        from alex.heads.perceiver.configuration_perceiver import PerceiverHeadConfig
        from alex.heads.perceiver.modeling_perceiver import PerceiverHead

        return PerceiverHeadConfig, PerceiverHead


HEAD = PerceiverFamily()
