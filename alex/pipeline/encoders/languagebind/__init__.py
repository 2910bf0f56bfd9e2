"""LanguageBind video tower (Zhu et al. 2024, "LanguageBind: Extending Video-Language Pretraining
to N-modality by Language-based Semantic Alignment"), re-implemented from shared/specs/languagebind.md
so the published checkpoints load strictly by their own key names."""

from alex.pipeline.encoders.languagebind.configuration_languagebind import LanguageBindVideoConfig
from alex.pipeline.encoders.languagebind.modeling_languagebind import LanguageBindVideo, convert_state_dict

__all__ = ["LanguageBindVideoConfig", "LanguageBindVideo", "convert_state_dict"]
