"""The commerce app in the Django admin: read-only views for staff (writes go through the consoles)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from commerce.models import StripePromotionCode

# --- Stripe ---------------------------------------------------------------------------------------------


@admin.register(StripePromotionCode)
class StripePromotionCodeAdmin(admin.ModelAdmin):
    """Which vouchers exist as Stripe promotion codes, and which Stripe refused (`last_error`). Read-only:
    the task and its sweep write these rows; the program's secrets are never shown here."""

    list_display = ("grant", "program", "voucher_code", "promotion_code_id", "attempts", "completed_at", "last_error")
    list_filter = ("program",)
    search_fields = ("voucher_code", "promotion_code_id", "coupon_id")
    list_select_related = ("grant__tier", "program")
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
