"""LanguageBind video tower (Zhu et al. 2024, "LanguageBind: Extending Video-Language Pretraining
to N-modality by Language-based Semantic Alignment"), re-implemented from shared/specs/languagebind.md
so the published checkpoints load strictly by their own key names. Exports load lazily: planning
a rerun imports the encoder module, not torch."""

from alex.lazy import lazy_exports

__all__ = ["LanguageBindVideoConfig", "LanguageBindVideo", "convert_state_dict"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "LanguageBindVideoConfig": ".configuration_languagebind",
    "LanguageBindVideo": ".modeling_languagebind",
    "convert_state_dict": ".modeling_languagebind",
})
