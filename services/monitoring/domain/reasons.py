"""Every reason code an assessment can carry, declared once: the rules raise only these, each
policy weighs every risk code, and support's catalogue answers them (or says it does not)."""

from __future__ import annotations

from services.monitoring.domain.events import CHECKS

# The risk rules' codes (rules.py raises them; a policy must weigh each one).
RISK_CODES: tuple[str, ...] = (
    "income_below_line",
    "sharp_income_fall",
    "rigid_expenditure",
    *(f"guarantee_{check}" for check in CHECKS),  # a check found with a problem
    "unsold_produce",
    # 2021 special attention (DOMAIN.md, 2021 guidance): a member's serious or chronic
    # illness, severe disability (grade 1-2), disabled elderly; other disability (grade 3-4 or
    # not given). From a diagnosis on a hardship report or the registry's member list.
    "serious_illness",
    "chronic_illness",
    "severe_disability",
    "disabled_elderly",
    "disability",
    "disaster",
    "accident",
    "epidemic_impact",
    "schooling_costs",
    "unstable_employment",
    "failed_industry_project",
    "no_labour",
    "other_hardship",
    "members_seeking_work",
    "students_without_access",
    "spring_farming_needs_help",
)
# The workflow's notes on a decision it kept on record (workflow.Irregularity).
INVALID_TRANSITION = "invalid_transition"  # a decision the workflow cannot take, ignored
POLICY_EXCEPTION = "policy_exception"  # a decision the policy forbids, taken
POLICY_TRANSITION = "policy_transition"  # carried over to a successor policy (workflow.Transition)
# A county-approved INCLUDE or ELIMINATE that skipped a procedure step, taken (the message names
# the step and the written reason).
PROCEDURE_EXCEPTION = "procedure_exception"
WORKFLOW_CODES: tuple[str, ...] = (
    INVALID_TRANSITION,
    POLICY_EXCEPTION,
    POLICY_TRANSITION,
    PROCEDURE_EXCEPTION,
)
REASON_CODES: tuple[str, ...] = RISK_CODES + WORKFLOW_CODES
