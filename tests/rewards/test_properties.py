"""For any sequence of events applied through the real services, the grants and milestones are what a
recount from the source rows says they should be, and reconciliation finds nothing left to do.

The expected state is computed here, independently: from the signups and conversions as they stand,
and, for the never-taken-back milestones, from the highest subscriber count the program ever had.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from ambassadors.models import Ambassador, AmbassadorCounters
from core.actors import Actor
from core.errors import InvalidInput
from referrals.models import Conversion, Signup
from referrals.services import (
    conversion_approve,
    conversion_record,
    conversion_refund,
    signup_override,
    signup_record,
    signup_status_change,
)
from rewards.models import Milestone, RewardGrant
from rewards.services import ReconcileReport, grant_redeem, reconcile
from tests.factories import ProgramFactory, enroll
from tests.rewards.conftest import price_ladder, voucher_tier
from tests.rewards.test_pricing import brute_force_occurrences

ACTOR = Actor.system("property test")
WHO = st.sampled_from(["ana", "bob", None])
INDEX = st.integers(min_value=0, max_value=40)

operations = st.one_of(
    st.tuples(st.just("signup"), WHO),
    st.tuples(st.just("signup_for_review"), WHO),
    st.tuples(st.just("review"), INDEX, st.sampled_from(["rejected", "qualified"])),
    st.tuples(st.just("override"), INDEX, WHO),
    st.tuples(st.just("convert"), INDEX, st.sampled_from(["10.00", "25.50", "40.00"])),
    st.tuples(st.just("approve"), INDEX),
    st.tuples(st.just("refund"), INDEX),
    st.tuples(st.just("redeem"), INDEX),
)


def pick(rows: list[Any], index: int) -> Any:
    return rows[index % len(rows)] if rows else None


class World:
    """One program with two ambassadors, three individual tiers (one double-sided) and a price ladder."""

    def __init__(self) -> None:
        self.program = ProgramFactory(slug="property")
        self.people = {"ana": enroll(self.program, "ana@example.com"), "bob": enroll(self.program, "bob@example.com")}
        self.tiers = [
            voucher_tier(
                self.program, threshold=2, repeat_every=Decimal(2),
                referee_reward_type="percent_voucher", referee_reward_value=Decimal(10),
            ),
            voucher_tier(self.program, threshold=1, metric="approved_conversions", reward_type="fixed_voucher",
                         reward_value=Decimal(10)),
            voucher_tier(self.program, threshold=50, repeat_every=Decimal(50), metric="converted_amount",
                         reward_type="account_credit", reward_value=Decimal(5)),
        ]  # fmt: skip
        self.ladder = price_ladder(self.program, step=3, drop="1.00")
        self.numbers = itertools.count(1)
        self.most_subscribers = 0

    def ambassador(self, who: str | None) -> Ambassador | None:
        return self.people[who] if who else None

    def apply(self, op: tuple[Any, ...]) -> None:
        kind, *args = op
        signups = list(Signup.objects.filter(program=self.program).order_by("pk"))
        conversions = list(Conversion.objects.filter(program=self.program).order_by("pk"))
        if kind in ("signup", "signup_for_review"):
            ambassador = self.ambassador(args[0])
            domain = "example.org" if kind == "signup" else "mailinator.com"  # disposable: pending review
            signup_record(
                program=self.program,
                email=f"friend{next(self.numbers)}@{domain}",
                referral_code=ambassador.code if ambassador else None,
                actor=ACTOR,
            )
        elif kind == "review" and signups:
            signup_status_change(signup=pick(signups, args[0]), status=args[1], reason="reviewed", actor=ACTOR)
        elif kind == "override" and signups:
            signup_override(
                signup=pick(signups, args[0]), ambassador=self.ambassador(args[1]), reason="override", actor=ACTOR
            )
        elif kind == "convert" and signups:
            conversion_record(
                program=self.program,
                actor=ACTOR,
                external_id=f"order-{next(self.numbers)}",
                email=pick(signups, args[0]).email,
                amount=args[1],
                currency="EUR",
            )
        elif kind == "approve" and conversions:
            conversion_approve(conversion_id=pick(conversions, args[0]).pk, actor=ACTOR)
        elif kind == "refund" and conversions:
            conversion_refund(program=self.program, external_id=pick(conversions, args[0]).external_id, actor=ACTOR)
        elif kind == "redeem":
            grant = pick(list(RewardGrant.objects.filter(tier__program=self.program).order_by("pk")), args[0])
            if grant is not None:
                try:
                    grant_redeem(grant=grant, actor=ACTOR)
                except InvalidInput:
                    assert grant.status not in ("unlocked", "issued")

    def remember_subscribers(self) -> None:
        qualified = Signup.objects.filter(program=self.program, status=Signup.Status.QUALIFIED).count()
        self.most_subscribers = max(self.most_subscribers, qualified)

    # --- The recount -------------------------------------------------------------------------------

    def metrics(self, ambassador: Ambassador) -> dict[str, Decimal]:
        counted = Signup.objects.filter(ambassador=ambassador, status=Signup.Status.QUALIFIED)
        amounts = list(
            Conversion.objects.filter(signup__in=counted, status=Conversion.Status.APPROVED).values_list(
                "amount", flat=True
            )
        )
        return {
            "qualified_signups": Decimal(counted.count()),
            "approved_conversions": Decimal(len(amounts)),
            "converted_amount": sum(amounts, Decimal(0)),
        }

    def check(self) -> None:
        for ambassador in self.people.values():
            metrics = self.metrics(ambassador)
            counters = AmbassadorCounters.objects.get(ambassador=ambassador)
            assert (counters.qualified, counters.conversions, counters.converted_amount) == (
                metrics["qualified_signups"], metrics["approved_conversions"], metrics["converted_amount"],
            )  # fmt: skip
            for tier in self.tiers:
                due = brute_force_occurrences(metrics[tier.metric], tier.threshold, tier.repeat_every)
                grants = {g.occurrence: g for g in RewardGrant.objects.filter(tier=tier, ambassador=ambassador)}
                for occurrence in range(1, due + 1):
                    grant = grants.get(occurrence)
                    assert grant is not None, f"{tier.name} #{occurrence} of {ambassador.email} missing"
                    assert grant.status != "revoked", f"{tier.name} #{occurrence} of {ambassador.email} revoked"
                    assert not grant.flagged, f"{tier.name} #{occurrence} of {ambassador.email} flagged, yet due"
                for occurrence, grant in grants.items():
                    if occurrence > due:
                        assert grant.status == "revoked" or (grant.status == "redeemed" and grant.flagged), (
                            f"{tier.name} #{occurrence} of {ambassador.email} kept ({grant.status}) beyond {due}"
                        )
        self.check_welcome_vouchers()
        steps = self.most_subscribers // self.ladder.step
        assert list(Milestone.objects.filter(tier=self.ladder).values_list("occurrence", flat=True)) == list(
            range(1, steps + 1)
        )

    def check_welcome_vouchers(self) -> None:
        double_sided = self.tiers[0]
        for signup in Signup.objects.filter(program=self.program):
            welcome = list(RewardGrant.objects.filter(tier=double_sided, referee_signup=signup))
            referred = signup.status == Signup.Status.QUALIFIED and signup.ambassador_id is not None
            if referred:
                assert len(welcome) == 1 and welcome[0].status != "revoked", f"{signup.email}: no live welcome"
            else:
                for grant in welcome:
                    assert grant.status == "revoked" or (grant.status == "redeemed" and grant.flagged), (
                        f"{signup.email} ({signup.status}, ambassador {signup.ambassador_id}) kept its welcome"
                    )


class RewardsMatchARecount(TestCase):
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(ops=st.lists(operations, min_size=1, max_size=20))
    def test_grants_and_milestones_equal_a_recount_from_the_source_rows(self, ops):
        note(f"operations: {ops}")
        world = World()
        for op in ops:
            with self.captureOnCommitCallbacks(execute=True):  # each event commits, then its tasks run
                world.apply(op)
            world.remember_subscribers()

        world.check()
        with self.captureOnCommitCallbacks(execute=True):
            report = reconcile(program=world.program)
        assert report.as_dict() == ReconcileReport().as_dict(), f"the events left work to reconcile: {report}"
        world.check()
