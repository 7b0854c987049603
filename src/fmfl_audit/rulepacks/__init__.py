"""Rule packs: models and loading."""

from fmfl_audit.rulepacks.loader import EffectiveRule, RuleSet, builtin_rules_dir, load_ruleset
from fmfl_audit.rulepacks.model import GradingPolicy, RulePackFile, RuleSpec

__all__ = [
    "EffectiveRule",
    "GradingPolicy",
    "RulePackFile",
    "RuleSet",
    "RuleSpec",
    "builtin_rules_dir",
    "load_ruleset",
]
