"""English labels of the contract's codes (the msgids the catalogues translate).

The codes themselves come from the contract's vocabulary and monitoring's reason codes; this
module only names them for people. A code without a label is shown as it is.
"""

from __future__ import annotations

from collections.abc import Mapping

from services.contract.vocabulary import symbols

# The review form's choices, declared once in the schemas.
DECISIONS = symbols("Decision")
CATEGORIES = symbols("Category")
BODIES = symbols("ReviewBody")
LEVELS = symbols("ApprovingLevel")
OUTCOMES = symbols("StepOutcome")
# Decisions whose outcome (passed or returned) must be given: the procedure's reviews.
WITH_OUTCOME = ("VILLAGE_DELIBERATION", "TOWNSHIP_REVIEW")
# Decisions the county may take by exception (a step skipped, with a written reason).
EXCEPTIONAL = ("INCLUDE", "ELIMINATE")

LABELS: Mapping[str, Mapping[str, str]] = {
    "decision": {
        "START_VERIFICATION": "Start verification",
        "INCLUDE": "Include in monitoring",
        "REJECT": "Reject (not included)",
        "PROPOSE_ELIMINATION": "Propose elimination",
        "ELIMINATE": "Eliminate risk",
        "KEEP_MONITORING": "Keep monitoring",
        "APPLY": "Household application",
        "VILLAGE_DELIBERATION": "Village deliberation",
        "NOTICE": "Public notice",
        "OBJECTION": "Objection",
        "TOWNSHIP_REVIEW": "Township review",
    },
    "category": {
        "UNSTABLE_LIFTED": "Unstable lifted household",
        "MARGINAL": "Marginal household",
        "GENERAL_KEY": "General key farm household",
        "SUDDEN_HARDSHIP": "Sudden severe hardship household",
    },
    "body": {
        "SELF_CHECK_GROUP": "Self-check group",
        "REVIEW_GROUP": "Review group",
        "AUDIT_GROUP": "Audit group",
        "VILLAGE": "Village",
        "TOWNSHIP": "Township",
        "COUNTY": "County",
    },
    "level": {"VILLAGE": "Village", "TOWNSHIP": "Township", "COUNTY": "County"},
    "risk": {"NONE": "None", "LOW": "Low", "MEDIUM": "Medium", "HIGH": "High"},
    # what a problem concerns: the contract's ProblemKind, as the read model stores it
    "problem": {
        "food": "Food",
        "clothing": "Clothing",
        "education": "Compulsory education",
        "medical": "Basic medical care",
        "housing": "Safe housing",
        "water": "Safe drinking water",
        "living_environment": "Living environment",
        "policy_card": "Policy card",
        "income": "Income",
        "records": "Records",
        "other": "Other",
    },
    "workflow": {
        "none": "Not flagged",
        "not_flagged": "Not flagged",
        "flagged": "Flagged",
        "verifying": "Verifying",
        "monitored": "Monitored",
        "elimination_proposed": "Elimination proposed",
        "eliminated": "Eliminated",
        "rejected": "Rejected",
    },
    "reason": {
        "income_below_line": "Income below the line",
        "sharp_income_fall": "Sharp fall in income",
        "rigid_expenditure": "Rigid expenditure",
        "guarantee_food": "Food not assured",
        "guarantee_clothing": "Clothing not assured",
        "guarantee_education": "Compulsory education not assured",
        "guarantee_medical": "Basic medical care not assured",
        "guarantee_housing": "Safe housing not assured",
        "guarantee_water": "Safe drinking water not assured",
        "unsold_produce": "Unsold produce",
        "serious_illness": "Serious illness",
        "chronic_illness": "Chronic illness",
        "severe_disability": "Severe disability",
        "disabled_elderly": "Disabled elderly",
        "disability": "Disability",
        "disaster": "Natural disaster",
        "accident": "Accident",
        "epidemic_impact": "Epidemic impact",
        "schooling_costs": "Schooling costs",
        "unstable_employment": "Unstable employment",
        "failed_industry_project": "Failed industry project",
        "no_labour": "No labour",
        "other_hardship": "Other hardship",
        "members_seeking_work": "Members seeking work",
        "students_without_access": "Students without access to school",
        "spring_farming_needs_help": "Spring farming needs help",
        "invalid_transition": "Decision the workflow could not take",
        "policy_exception": "Policy exception",
        "procedure_exception": "Procedure exception approved by the county",
        "policy_transition": "Carried over by a policy change",
    },
    "measure": {
        "recommended": "Recommended",
        "waiting": "Waiting for capacity",
        "accepted": "Accepted",
        "delivered": "Delivered",
        "completed": "Completed",
        "cancelled": "Cancelled",
    },
    "personal": {  # the registry's PersonalData fields
        "head_name": "Head of household",
        "citizen_id": "Citizen ID number",
        "phone": "Phone",
    },
    "overdue": {
        "decision_overdue": "Decision overdue",
        "visit_overdue": "Visit overdue",
        "problem_overdue": "Problem overdue",
        "procedure_step_overdue": "Procedure step overdue",
    },
    # the step an entry or exit procedure awaits, as the read model stores it
    "procedure": {
        "village_deliberation": "Village deliberation",
        "notice": "Public notice to post",
        "notice_running": "In public notice",
        "township_review": "Township review",
        "county_approval": "County approval",
    },
    "direction": {"entry": "Entry procedure", "exit": "Exit procedure"},
    "outcome": {"PASSED": "Passed", "RETURNED": "Returned"},
    # the console roles (roles.py), shown beside the holder
    "role": {
        "operator": "Operator",
        "reviewer": "Reviewer",
        "village": "Village committee",
        "cadre": "Cadre",
        "auditor": "Auditor",
    },
}


def label(kind: str, code: str | None) -> str:
    """The English label of `code` of `kind` (the msgid), else the code itself."""
    if code is None:
        return ""
    return LABELS.get(kind, {}).get(code, code)
