"""Canary decisions as pure functions: policy and metrics snapshot in, decision and evidence out.

Modules: ``checks`` (what each side did over a window, the statistics, one function per check)
and ``policy`` (the policy file, and the decision the checks add up to). Everything is
re-exported here: import from ``trending.rollout.canary``. The local router's traffic split file
lives with the router (``serving.router.split``).
"""

from trending.rollout.canary.checks import (
    CHECK_NAMES,
    Check,
    CheckStatus,
    MetricsSnapshot,
    ShadowStats,
    VersionStats,
    js_divergence,
    js_noise_allowance,
    mean_shift_noise_allowance,
    run_checks,
)
from trending.rollout.canary.policy import (
    Action,
    CanaryPolicy,
    CanaryPolicyError,
    Decision,
    decide,
    load_policy,
    next_step,
)

__all__ = [
    "CHECK_NAMES",
    "Action",
    "CanaryPolicy",
    "CanaryPolicyError",
    "Check",
    "CheckStatus",
    "Decision",
    "MetricsSnapshot",
    "ShadowStats",
    "VersionStats",
    "decide",
    "js_divergence",
    "js_noise_allowance",
    "load_policy",
    "mean_shift_noise_allowance",
    "next_step",
    "run_checks",
]
