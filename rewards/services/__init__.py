"""Writes of the rewards engine: tier configuration, unlocking and revoking grants, reaching milestones,
and the reconciliation that repairs whatever a lost message missed.

One module per use case; callers import from the package, which re-exports the public surface.
"""

from rewards.services.contests import (
    CONTEST_FIELDS,
    RankedAmbassador,
    contest_check,
    contest_create,
    contest_freeze,
    contest_ranking,
    contest_update,
    contest_winner_notify,
    contest_winners_unnotified,
    contests_freeze_ended,
)
from rewards.services.grants import (
    grant_create,
    grant_redeem,
    voucher_code_generate,
    welcome_grants_withdraw_unreferred,
)
from rewards.services.privacy import (
    ErasureResult,
    Person,
    PersonSummary,
    email_check,
    person_erase,
    person_export,
    person_find,
    person_of_user,
    person_summary,
)
from rewards.services.recalculation import (
    MAX_OCCURRENCES_PER_RUN,
    RecalcResult,
    ambassador_recalculate,
    metric_value,
    pending_recalculate,
    program_counts_fold_pending,
    program_recalculate,
    recalculation_enqueue,
)
from rewards.services.reconciliation import ReconcileReport, reconcile
from rewards.services.tiers import TIER_FIELDS, tier_check, tier_create, tier_update

__all__ = [
    "CONTEST_FIELDS",
    "RankedAmbassador",
    "contest_check",
    "contest_create",
    "contest_freeze",
    "contest_ranking",
    "contest_update",
    "contest_winner_notify",
    "contest_winners_unnotified",
    "contests_freeze_ended",
    "MAX_OCCURRENCES_PER_RUN",
    "TIER_FIELDS",
    "RecalcResult",
    "ReconcileReport",
    "ambassador_recalculate",
    "grant_create",
    "grant_redeem",
    "metric_value",
    "pending_recalculate",
    "program_counts_fold_pending",
    "program_recalculate",
    "recalculation_enqueue",
    "reconcile",
    "ErasureResult",
    "Person",
    "PersonSummary",
    "email_check",
    "person_erase",
    "person_export",
    "person_find",
    "person_of_user",
    "person_summary",
    "tier_check",
    "tier_create",
    "tier_update",
    "voucher_code_generate",
    "welcome_grants_withdraw_unreferred",
]
