"""Template filters for every page: `money` formats an amount in the page's language (20,00 € / €20.00)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from babel.numbers import format_currency
from django import template
from django.utils.translation import get_language, to_locale

register = template.Library()


@register.filter
def money(amount: Decimal | int | str | None, currency: str = "EUR") -> str:
    """`{{ price|money:program.currency }}`: the amount with its currency, per the active language's rules.

    Decimal in, never float. An empty amount renders as nothing, so a missing price never shows as 0.
    """
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return ""
    return format_currency(value, currency or "EUR", locale=to_locale(get_language() or "en"))
