"""`manage.py seed_demo`: the book-launch demo program of the README, idempotent (run it any number of times)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from ambassadors.models import Ambassador, Program
from ambassadors.services import ambassador_enroll, program_create
from core import clock
from core.actors import Actor
from core.roles import AUDITORS_GROUP, MARKETING_GROUP
from referrals.models import Click, Conversion
from referrals.services import click_record, conversion_record, signup_record
from rewards.models import Contest, RewardTier
from rewards.services import contest_create, tier_create

DEMO_PASSWORD = "parrain-demo"  # noqa: S105  (printed on purpose: demo logins of a local instance)
# What each login can do.
LOGINS = [
    ("ambassador", "an ambassador of the book launch, code BOOKFAN (/r/BOOKFAN): /dashboard/ and /api/v1/me"),
    ("marketer", "marketing staff: /staff/ (programs, tiers, contests, analytics)"),
    ("admin", "admin: /audit/ (attributions, overrides, review queue, audit trail) and /staff/"),
]


class Command(BaseCommand):
    help = "Create the demo program 'book-launch' with tiers, ambassadors, clicks and signups (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            program = self._program()
            self._tiers(program)
            users = self._users()
            ambassadors = self._ambassadors(program, users["ambassador"])
        # Outside the transaction: each signup commits and its (eager) recalculation runs after commit.
        self._activity(program, ambassadors)
        self.stdout.write(self.style.SUCCESS(f"Demo program ready: /p/{program.slug}/"))
        # Accounts sign in by e-mail (or with a code e-mailed to them); the Django admin still asks for the username.
        self.stdout.write(f"Demo logins at /accounts/login/, by e-mail (password for all: {DEMO_PASSWORD}):")
        for username, role in LOGINS:
            self.stdout.write(f"  {users[username].email:<28} {role}")

    def _program(self) -> Program:
        existing = Program.objects.filter(slug="book-launch").first()
        if existing is not None:
            return existing
        return program_create(
            actor=Actor.system("seed_demo"),
            slug="book-launch",
            name="The Book Launch",
            description=(
                "Subscribe to the author's newsletter: every 5 new subscribers, the book's price drops by 1.00 EUR "
                "for everyone, down to 10.00. Bring 3 friends and get a 20% voucher."
            ),
            currency="EUR",
            base_price=Decimal("20.00"),
            floor_price=Decimal("10.00"),
            hold_period_days=14,
            leaderboard_public=True,
        )

    def _tiers(self, program: Program) -> None:
        if not RewardTier.objects.filter(program=program, kind=RewardTier.Kind.COLLECTIVE).exists():
            tier_create(
                actor=Actor.system("seed_demo"),
                program=program,
                name="Community price drop",
                kind=RewardTier.Kind.COLLECTIVE,
                step=5,
                drop_type=RewardTier.DropType.AMOUNT,
                drop_value=Decimal("1.00"),
            )
        if not RewardTier.objects.filter(program=program, kind=RewardTier.Kind.INDIVIDUAL).exists():
            tier_create(
                actor=Actor.system("seed_demo"),
                program=program,
                name="3 friends subscribed: a 20% voucher",
                kind=RewardTier.Kind.INDIVIDUAL,
                metric=RewardTier.Metric.QUALIFIED_SIGNUPS,
                threshold=Decimal("3"),
                reward_type=RewardTier.RewardType.PERCENT_VOUCHER,
                reward_value=Decimal("20"),
            )

    def _users(self) -> dict[str, Any]:
        User = get_user_model()
        marketing, _ = Group.objects.get_or_create(name=MARKETING_GROUP)
        auditors, _ = Group.objects.get_or_create(name=AUDITORS_GROUP)
        marketing.permissions.set(
            Permission.objects.filter(
                content_type__app_label__in=["ambassadors", "rewards"],
                codename__regex=r"^(view|change|add)_(program|rewardtier)$",
            )
        )
        users = {}
        for username, _role in LOGINS:
            user, created = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@demo.parrain.test"}
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                if username == "admin":
                    user.is_staff = user.is_superuser = True
                if username == "marketer":
                    user.is_staff = True
                user.save()
            # Demo addresses count as verified: e-mail verification is mandatory and nobody reads these inboxes.
            EmailAddress.objects.update_or_create(
                user=user, email=user.email, defaults={"verified": True, "primary": True}
            )
            if username == "marketer":
                user.groups.add(marketing)
            if username == "admin":
                user.groups.add(auditors)
            users[username] = user
        return users

    def _ambassadors(self, program: Program, demo_user: Any) -> list[Ambassador]:
        me, _ = ambassador_enroll(
            program=program,
            email=demo_user.email,
            display_name="Demo Ambassador",
            code="BOOKFAN",
            user=demo_user,
        )
        alice, _ = ambassador_enroll(program=program, email="alice@demo.parrain.test", display_name="Alice")
        bob, _ = ambassador_enroll(program=program, email="bob@demo.parrain.test", display_name="Bob")
        return [me, alice, bob]

    def _activity(self, program: Program, ambassadors: list[Ambassador]) -> None:
        me, alice, bob = ambassadors
        browsers = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
        for ambassador, clicks in ((me, 4), (alice, 6), (bob, 2)):
            for i in range(clicks - Click.objects.filter(ambassador=ambassador).count()):
                click_record(
                    code=ambassador.code,
                    ip=f"192.0.2.{i + 1}",
                    user_agent=browsers,
                    referer="https://newsletter.example/",
                    visitor_id=f"demo-visitor-{ambassador.code}-{i}",
                )
        actor = Actor.system("seed_demo")
        plan = [(alice, 3), (me, 2), (bob, 1), (None, 1)]
        for ambassador, count in plan:
            for i in range(count):
                owner = ambassador.code.lower() if ambassador else "direct"
                signup_record(
                    program=program,
                    email=f"friend{i + 1}.{owner}@demo.parrain.test",
                    referral_code=ambassador.code if ambassador else None,
                    actor=actor,
                )
        self._purchases(program, ambassadors, actor)
        # A throwaway address: held for review, so the audit console's review queue has something to decide.
        signup_record(program=program, email="reader@mailinator.com", referral_code=bob.code, actor=actor)
        if not Contest.objects.filter(program=program).exists():
            now = clock.now()
            contest_create(
                program=program,
                actor=actor,
                name="Ambassador of the month",
                prize_text="A signed first edition",
                starts_at=now - timedelta(days=1),
                ends_at=now + timedelta(days=29),
            )

    def _purchases(self, program: Program, ambassadors: list[Ambassador], actor: Actor) -> None:
        """Books bought by referred friends and by Alice herself (her own spend, beside what her friends bring):
        bought three weeks ago, so past the hold period and approved at the next periodic run."""
        me, alice, bob = ambassadors
        signup_record(program=program, email=alice.email, actor=actor)  # Alice subscribes for herself
        three_weeks_ago = clock.now() - timedelta(days=21)
        purchases = [
            ("demo-order-1", f"friend1.{alice.code.lower()}@demo.parrain.test", "19.00"),
            ("demo-order-2", f"friend2.{alice.code.lower()}@demo.parrain.test", "19.00"),
            ("demo-order-3", f"friend1.{me.code.lower()}@demo.parrain.test", "18.00"),
            ("demo-order-4", alice.email, "19.00"),
        ]
        recorded = set(Conversion.objects.filter(program=program).values_list("external_id", flat=True))
        for external_id, email, amount in purchases:
            if external_id in recorded:  # a later run: the same order would carry another date (a 409)
                continue
            conversion_record(
                program=program,
                actor=actor,
                external_id=external_id,
                amount=amount,
                currency=program.currency,
                email=email,
                occurred_at=three_weeks_ago,
            )
