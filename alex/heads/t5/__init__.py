from alex.heads.t5.configuration_t5 import AlexT5Config
from alex.heads.t5.modeling_t5 import AlexT5ForConditionalGeneration, VisualEmbedding

__all__ = ["AlexT5Config", "AlexT5ForConditionalGeneration", "VisualEmbedding"]
