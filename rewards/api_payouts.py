"""Reading a program's payouts over the API (`manage` key or marketing staff), for the business's accounting:
the runs with their totals per currency, and one run's lines. Creating a run and marking it paid stay on the
staff console (core.policies.may_manage_payouts): money moves from a person's session, never from a key.

Amounts are exact decimal strings in the currency's own places ("12.30" EUR, "1500" JPY), never floats.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Count, Sum
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ambassadors.auth import ApiKeyRateThrottle, KeyOrAuthenticated, require
from ambassadors.selectors import program_by_slug
from config.filters import ListApi
from config.schema import access
from config.schema_examples import API, CURSOR, EXAMPLES, detail
from core import policies
from core.errors import NotFound
from rewards.models import PayoutLine, PayoutRun
from rewards.services.payouts import major_units, run_lines, run_totals

UNKNOWN = "No payout with this id in this program."


class PayoutTotalOutput(serializers.Serializer):
    currency = serializers.CharField(help_text="ISO 4217.")
    amount = serializers.CharField(
        help_text='An exact decimal string in the currency\'s places ("12.30"): what a draft proposes to pay, '
        "what a paid run paid (net of reversals)."
    )


class PayoutRunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    period_start = serializers.DateField()
    period_end = serializers.DateField(help_text="Inclusive: cash rewards unlocked up to the end of this day (UTC).")
    state = serializers.ChoiceField(
        choices=[s.value for s in PayoutRun.State],
        help_text="draft: proposed, not paid yet; paid: marked paid by staff (its lines paid or skipped).",
    )
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(allow_blank=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    paid_by = serializers.CharField(allow_blank=True)
    lines_count = serializers.IntegerField(help_text="Every line of the run, skipped ones included.")
    totals = PayoutTotalOutput(many=True, help_text="Per currency, in the order of the currency codes.")


class PayoutLineOutput(serializers.Serializer):
    id = serializers.IntegerField()
    ambassador = serializers.CharField(help_text="The ambassador's referral code.")
    grant = serializers.IntegerField(help_text="The cash reward (grant) the line pays or takes back.")
    tier = serializers.CharField(help_text="The name of the reward tier that unlocked it.")
    kind = serializers.ChoiceField(
        choices=[k.value for k in PayoutLine.Kind],
        help_text="payment: the reward paid; reversal: a paid reward revoked since, taken back (negative amount).",
    )
    amount = serializers.CharField(help_text='An exact decimal string ("12.30", "-12.30" for a reversal).')
    currency = serializers.CharField()
    status = serializers.ChoiceField(
        choices=[s.value for s in PayoutLine.Status],
        help_text="pending: in a draft; paid: paid with the run; skipped: not paid (see skip_reason).",
    )
    skip_reason = serializers.CharField(allow_blank=True)


class PayoutRunDetailOutput(PayoutRunOutput):
    lines = PayoutLineOutput(many=True)


def _run_data(run: PayoutRun, *, lines_count: int, totals: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": run.pk,
        "period_start": run.period_start,
        "period_end": run.period_end,
        "state": run.state,
        "created_at": run.created_at,
        "created_by": run.created_by,
        "paid_at": run.paid_at,
        "paid_by": run.paid_by,
        "lines_count": lines_count,
        "totals": [{"currency": currency, "amount": str(amount)} for currency, amount in sorted(totals.items())],
    }


def _page_totals(runs: list[PayoutRun]) -> dict[int, tuple[int, dict[str, Any]]]:
    """Each run's line count and totals per currency (as run_totals counts them: a draft its pending lines, a
    paid run what it paid), for a whole page of runs in one grouped query."""
    counted_status = {
        run.pk: PayoutLine.Status.PAID if run.state == PayoutRun.State.PAID else PayoutLine.Status.PENDING
        for run in runs
    }
    counts: dict[int, int] = defaultdict(int)
    minor: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = (
        PayoutLine.objects.filter(run_id__in=list(counted_status))
        .values("run_id", "status", "currency")
        .annotate(total=Sum("amount_minor"), lines=Count("id"))
        .order_by()
    )
    for row in rows:
        counts[row["run_id"]] += row["lines"]
        if row["status"] == counted_status[row["run_id"]]:
            minor[row["run_id"]][row["currency"]] += row["total"]
    return {
        pk: (
            counts[pk],
            {currency: major_units(amount, currency) for currency, amount in minor[pk].items()},
        )
        for pk in counted_status
    }


class PayoutsApi(ListApi):
    """The program's payout runs, newest first, each with its totals per currency."""

    permission_classes = [KeyOrAuthenticated]
    throttle_classes = [ApiKeyRateThrottle]
    queryset = PayoutRun.objects.none()  # the schema's; the program's runs are read in get()
    serializer_class = PayoutRunOutput
    cursor_ordering = ("-id",)

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(
        responses=PayoutRunOutput(many=True),
        description=(
            "The program's payout runs, newest first, paged with cursors. `totals` gives, per currency, what a "
            "draft proposes to pay or what a paid run paid, as exact decimal strings. Runs are created and marked "
            "paid on the staff console, never over the API."
        ),
    )
    def get(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require(policies.may_read_payouts(policies.Principal.from_request(request), program))
        page = self.paginate_queryset(PayoutRun.objects.filter(program=program))
        runs = list(page or [])
        totals = _page_totals(runs)
        data = [_run_data(run, lines_count=totals[run.pk][0], totals=totals[run.pk][1]) for run in runs]
        return self.get_paginated_response(PayoutRunOutput(data, many=True).data)


class PayoutDetailApi(APIView):
    """One payout run of the program with every line."""

    permission_classes = [KeyOrAuthenticated]
    throttle_classes = [ApiKeyRateThrottle]

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(
        responses=PayoutRunDetailOutput,
        description=(
            "One payout run with its lines: each grant paid (payment) or taken back (reversal, negative), per "
            "ambassador, with the line's status (a line of a paid run is paid or skipped, with why). Bank "
            "details are never part of it. Another program's run answers 404."
        ),
    )
    def get(self, request: Request, slug: str, run_id: int) -> Response:
        program = program_by_slug(slug)
        require(policies.may_read_payouts(policies.Principal.from_request(request), program))
        run = PayoutRun.objects.filter(program=program, pk=run_id).first()
        if run is None:
            raise NotFound(UNKNOWN)
        lines = run_lines(run)
        data = _run_data(run, lines_count=len(lines), totals=run_totals(run, lines))
        data["lines"] = [
            {
                "id": line.pk,
                "ambassador": line.ambassador.code,
                "grant": line.grant_id,
                "tier": line.grant.tier.name,
                "kind": line.kind,
                "amount": str(major_units(line.amount_minor, line.currency)),
                "currency": line.currency,
                "status": line.status,
                "skip_reason": line.skip_reason,
            }
            for line in lines
        ]
        return Response(PayoutRunDetailOutput(data).data)


# --- The schema's examples (config.schema_examples holds one entry per operation) ---------------------

_EXAMPLE_RUN = {
    "id": 4,
    "period_start": "2026-11-01",
    "period_end": "2026-11-30",
    "state": "paid",
    "created_at": "2026-12-01T09:00:00Z",
    "created_by": "marketer@example.com",
    "paid_at": "2026-12-02T10:15:00Z",
    "paid_by": "marketer@example.com",
    "lines_count": 3,
    "totals": [{"currency": "EUR", "amount": "40.00"}],
}
_EXAMPLE_LINE = {
    "id": 31,
    "ambassador": "ANA2026",
    "grant": 118,
    "tier": "Five friends: 20 euros",
    "kind": "payment",
    "amount": "20.00",
    "currency": "EUR",
    "status": "paid",
    "skip_reason": "",
}
EXAMPLES.setdefault(
    "v1_programs_payouts_list",
    {200: {"next": f"{API}/payouts?cursor={CURSOR}", "previous": None, "results": [_EXAMPLE_RUN]}},
)
EXAMPLES.setdefault(
    "v1_programs_payouts_retrieve",
    {
        200: {
            **_EXAMPLE_RUN,
            "lines": [
                _EXAMPLE_LINE,
                {**_EXAMPLE_LINE, "id": 32, "grant": 131},
                {
                    **_EXAMPLE_LINE,
                    "id": 33,
                    "ambassador": "BOBCODE",
                    "grant": 97,
                    "kind": "reversal",
                    "amount": "-20.00",
                    "status": "skipped",
                    "skip_reason": "The ambassador's balance in EUR is not above zero (-20.00): carried to the "
                    "next payout.",
                },
            ],
        },
        404: detail(UNKNOWN),
    },
)
