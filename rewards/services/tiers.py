"""Reward tier configuration: the one check every entry point (API, admin, pages) runs before saving."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from babel.numbers import get_currency_precision, list_currencies
from django.db import models, transaction

from ambassadors.models import Program
from core.actors import Actor
from core.audit import audit_record
from core.constraints import constraint_errors_as_invalid_input
from core.errors import InvalidInput
from core.text import plain_text
from rewards.models import RewardTier
from rewards.services.recalculation import (
    recalculation_enqueue,
)

TIER_FIELDS = (
    "name", "kind", "metric", "threshold", "repeat_every", "reward_type", "reward_value", "reward_text",
    "reward_currency", "referee_reward_type", "referee_reward_value", "step", "drop_type", "drop_value",
    "voucher_valid_days", "is_active",
)  # fmt: skip

# What a voucher's validity may be: a day at least, ten years at most (the model's check constraint too).
VOUCHER_VALID_DAYS_MAX = 3650
# The rewards a shop redeems with the voucher's code at checkout: those a validity applies to.
VOUCHER_TYPES = (RewardTier.RewardType.PERCENT_VOUCHER, RewardTier.RewardType.FIXED_VOUCHER)


def tier_check(*, program: Program, fields: dict[str, Any], tier_id: int | None = None) -> None:
    """Refuse a configuration that cannot work, with the field to fix (admin and API alike)."""
    kind = fields.get("kind") or RewardTier.Kind.INDIVIDUAL
    if "name" in fields:
        plain_text(fields["name"], field="name", required=True)
    plain_text(fields.get("reward_text"), field="reward_text")
    _check_positive_whatever_the_kind(fields)
    others = RewardTier.objects.filter(program=program, is_active=True)
    if tier_id is not None:
        others = others.exclude(pk=tier_id)
    if kind == RewardTier.Kind.INDIVIDUAL:
        threshold = fields.get("threshold")
        if threshold is None or threshold <= 0:
            raise InvalidInput("The threshold must be above 0.", field="threshold")
        metric = fields.get("metric") or RewardTier.Metric.QUALIFIED_SIGNUPS
        whole = metric != RewardTier.Metric.CONVERTED_AMOUNT
        repeat = fields.get("repeat_every")
        if repeat is not None and repeat <= 0:
            raise InvalidInput("'Again every' must be above 0, or empty for once only.", field="repeat_every")
        if whole and (threshold != threshold.to_integral_value() or (repeat and repeat != repeat.to_integral_value())):
            raise InvalidInput("Counts are whole numbers.", field="threshold")
        _check_reward(fields.get("reward_type"), fields.get("reward_value"), fields.get("reward_text"), "reward")
        _check_cash(fields)
        if fields.get("referee_reward_type") == RewardTier.RewardType.CASH:
            raise InvalidInput(
                "A friend's welcome reward cannot be cash: only ambassadors are paid.", field="referee_reward_type"
            )
        if fields.get("referee_reward_type"):
            _check_reward(fields.get("referee_reward_type"), fields.get("referee_reward_value"), "-", "referee_reward")
        if (
            fields.get("is_active", True)
            and others.filter(kind=RewardTier.Kind.INDIVIDUAL, metric=metric, threshold=threshold).exists()
        ):
            raise InvalidInput("Another active tier already unlocks at this metric and threshold.", field="threshold")
    elif kind == RewardTier.Kind.COLLECTIVE:
        if program.base_price is None or program.floor_price is None:
            raise InvalidInput("Set the program's base and floor price before a collective tier.", field="kind")
        step = fields.get("step")
        if not step or step <= 0:
            raise InvalidInput("The step must be at least 1 subscriber.", field="step")
        drop_type, drop = fields.get("drop_type"), fields.get("drop_value")
        if drop_type not in RewardTier.DropType.values:
            raise InvalidInput("Choose a drop in amount or in percent.", field="drop_type")
        if drop is None or drop <= 0:
            raise InvalidInput("The price drop must be above 0.", field="drop_value")
        if drop_type == RewardTier.DropType.PERCENT and drop > 100:
            raise InvalidInput("A drop of more than 100% makes a negative price.", field="drop_value")
        if drop_type == RewardTier.DropType.AMOUNT and drop > program.base_price:
            raise InvalidInput("A drop above the base price makes a negative price.", field="drop_value")
        if fields.get("is_active", True) and others.filter(kind=RewardTier.Kind.COLLECTIVE).exists():
            raise InvalidInput("The program already has an active collective ladder.", field="kind")
    else:
        raise InvalidInput("A tier is individual or collective.", field="kind")
    if kind != RewardTier.Kind.INDIVIDUAL and fields.get("reward_currency"):
        raise InvalidInput("Only a tier that pays cash has a currency: leave it empty.", field="reward_currency")
    _check_voucher_valid_days(kind, fields)


def _check_cash(fields: dict[str, Any]) -> None:
    """A cash reward is an amount in a currency Parrain can pay out; any other reward has no currency."""
    currency = fields.get("reward_currency") or ""
    if fields.get("reward_type") != RewardTier.RewardType.CASH:
        if currency:
            raise InvalidInput("Only a tier that pays cash has a currency: leave it empty.", field="reward_currency")
        return
    if not currency:
        raise InvalidInput("Say in which currency the cash reward is paid (EUR, USD...).", field="reward_currency")
    digits = currency_digits(currency)
    if digits is None:
        raise InvalidInput("Unknown currency: use its ISO 4217 code (EUR, USD...).", field="reward_currency")
    value = fields.get("reward_value")
    if value is not None and value != value.quantize(Decimal(1).scaleb(-digits)):
        raise InvalidInput(f"{currency} has {digits} decimal places at most.", field="reward_value")


def _check_cash_unchanged(tier: RewardTier, fields: dict[str, Any]) -> None:
    # A cash grant is paid at its tier's amount (rewards.services.payouts): once a cash tier has grants, its
    # amount and currency stay what those ambassadors were promised, and no voucher tier turns into cash.
    was_cash = tier.reward_type == RewardTier.RewardType.CASH
    becomes_cash = fields.get("reward_type", tier.reward_type) == RewardTier.RewardType.CASH
    if not (was_cash or becomes_cash):
        return
    changed = [
        name
        for name in ("reward_type", "reward_value", "reward_currency")
        if name in fields and fields[name] != getattr(tier, name)
    ]
    if changed and tier.grants.exists():
        raise InvalidInput(
            "Ambassadors have unlocked this tier: its cash amount and currency stay as promised. "
            "Deactivate it and create a new tier instead.",
            field=changed[0],
        )


def currency_digits(currency: str) -> int | None:
    """The decimal places of an ISO 4217 currency (2 for EUR, 0 for JPY), None when it is no currency."""
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isascii() or not currency.isupper():
        return None
    if currency not in list_currencies():
        return None
    return int(get_currency_precision(currency))


def _check_positive_whatever_the_kind(fields: dict[str, Any]) -> None:
    # The database's check constraints hold for every kind: a value the kind ignores (a step on an
    # individual tier, a threshold on a ladder) must still be one the table accepts, or a PATCH of it
    # reached the database and answered a 500.
    threshold, repeat, step = fields.get("threshold"), fields.get("repeat_every"), fields.get("step")
    if threshold is not None and threshold <= 0:
        raise InvalidInput("The threshold must be above 0.", field="threshold")
    if repeat is not None and repeat <= 0:
        raise InvalidInput("'Again every' must be above 0, or empty for once only.", field="repeat_every")
    if step is not None and step <= 0:
        raise InvalidInput("The step must be at least 1 subscriber.", field="step")


def _check_voucher_valid_days(kind: str, fields: dict[str, Any]) -> None:
    days = fields.get("voucher_valid_days")
    if days is None:
        return
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= VOUCHER_VALID_DAYS_MAX:
        raise InvalidInput(
            f"Vouchers stay valid from 1 to {VOUCHER_VALID_DAYS_MAX} days, or empty for never expiring.",
            field="voucher_valid_days",
        )
    gives_voucher = kind == RewardTier.Kind.INDIVIDUAL and (
        fields.get("reward_type") in VOUCHER_TYPES or fields.get("referee_reward_type") in VOUCHER_TYPES
    )
    if not gives_voucher:
        raise InvalidInput(
            "Only a tier that gives a percent or fixed-amount voucher has a validity: leave it empty.",
            field="voucher_valid_days",
        )


def _check_reward(reward_type: Any, value: Any, text: Any, prefix: str) -> None:
    if reward_type not in RewardTier.RewardType.values:
        raise InvalidInput("Choose what the tier grants.", field=f"{prefix}_type")
    if reward_type == RewardTier.RewardType.CUSTOM:
        if not text:
            raise InvalidInput("Describe the custom reward.", field="reward_text")
        return
    if value is None or value <= 0:
        raise InvalidInput("The reward's value must be above 0.", field=f"{prefix}_value")
    if reward_type == RewardTier.RewardType.PERCENT_VOUCHER and value > 100:
        raise InvalidInput("A percent voucher is at most 100%.", field=f"{prefix}_value")


def tier_snapshot(tier: RewardTier) -> dict[str, Any]:
    """The configuration of a tier as the audit trail keeps it (decimals as strings, as stored)."""
    return {name: _as_stored(name, getattr(tier, name)) for name in TIER_FIELDS}


def _as_stored(name: str, value: Any) -> Any:
    field = RewardTier._meta.get_field(name)
    if isinstance(field, models.DecimalField) and value is not None:
        return str(Decimal(value).quantize(Decimal(1).scaleb(-field.decimal_places)))
    return value


def tier_create(*, program: Program, actor: Actor, **fields: Any) -> RewardTier:
    tier_check(program=program, fields=fields)
    with constraint_errors_as_invalid_input(RewardTier), transaction.atomic():
        tier = RewardTier.objects.create(program=program, **fields)
        audit_record(
            actor=actor,
            action="tier.created",
            object_type="reward_tier",
            object_id=tier.pk,
            program_id=program.pk,
            after=tier_snapshot(tier),
        )
    recalculation_enqueue(program_id=program.pk, ambassador_ids=None)
    return tier


def tier_update(*, tier: RewardTier, actor: Actor, **fields: Any) -> RewardTier:
    """Change a tier; the merged values pass the same check as a new tier's."""
    unknown = sorted(set(fields) - set(TIER_FIELDS))
    if unknown:
        # `program` above all: a tier's grants and milestones belong to its program.
        raise InvalidInput("This field cannot be changed.", field=unknown[0])
    with constraint_errors_as_invalid_input(RewardTier), transaction.atomic():
        # Lock the row: the check and the audit's `before` must see the tier this update replaces, not
        # one another editor is changing at the same moment.
        locked = RewardTier.objects.select_for_update(of=("self",)).select_related("program").get(pk=tier.pk)
        before = tier_snapshot(locked)
        merged = {name: getattr(locked, name) for name in TIER_FIELDS} | fields
        tier_check(program=locked.program, fields=merged, tier_id=locked.pk)
        _check_cash_unchanged(locked, fields)
        for name, value in fields.items():
            setattr(locked, name, value)
        after = tier_snapshot(locked)
        if after == before:
            return locked
        locked.save()
        audit_record(
            actor=actor,
            action="tier.updated",
            object_type="reward_tier",
            object_id=locked.pk,
            program_id=locked.program_id,
            before=before,
            after=after,
        )
    recalculation_enqueue(program_id=locked.program_id, ambassador_ids=None)
    return locked
