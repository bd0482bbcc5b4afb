"""Django admin for programs, ambassadors and API keys. Writes go through the services, which check and
audit them as they do for the API: `save_model` never saves straight through the ORM."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from ambassadors.models import (
    Ambassador,
    AmbassadorCounters,
    ApiKey,
    Program,
    ProgramCounters,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from ambassadors.services import (
    PROGRAM_FIELDS,
    RATE_FIELDS,
    ambassador_update,
    api_key_revoke,
    api_key_update,
    program_check,
    program_create,
    program_update,
)
from core import policies
from core.actors import Actor
from core.errors import ParrainError
from core.text import plain_text


def _as_validation_error(exc: ParrainError, form: forms.BaseForm) -> ValidationError:
    field = exc.field if exc.field in form.fields else None
    return ValidationError({field: exc.message} if field else exc.message)


def _plain_text_field(form: forms.BaseForm, name: str, max_length: int) -> str:
    try:
        return plain_text(form.cleaned_data.get(name), field=name, max_length=max_length)
    except ParrainError as exc:
        raise ValidationError(exc.message) from exc


def _keep_saved(obj: Any, saved: Any) -> None:
    # The admin logs and redirects with the object it handed to save_model: make it the saved row.
    obj.__dict__.update(saved.__dict__)


class ProgramForm(forms.ModelForm):
    class Meta:
        model = Program
        fields = list(PROGRAM_FIELDS)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            program_check(
                currency=data.get("currency", ""),
                base_price=data.get("base_price"),
                floor_price=data.get("floor_price"),
                allowed_redirect_hosts=data.get("allowed_redirect_hosts", []),
                name=data.get("name"),
                share_message=data.get("share_message"),
                rates={name: data.get(name) for name in RATE_FIELDS},
                attribution_model=data.get("attribution_model"),
                attribution_cookie=data.get("attribution_cookie"),
            )
        except ParrainError as exc:
            raise _as_validation_error(exc, self) from exc
        return data


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    form = ProgramForm
    list_display = ["name", "slug", "status", "currency", "attribution_model", "created_at"]
    list_filter = ["status", "attribution_model"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def save_model(self, request: Any, obj: Program, form: Any, change: bool) -> None:
        actor = Actor.for_user(request.user)
        if change:
            changed = {name: form.cleaned_data[name] for name in form.changed_data if name in PROGRAM_FIELDS}
            saved = program_update(program=obj, actor=actor, **changed)
        else:
            fields = {name: form.cleaned_data[name] for name in PROGRAM_FIELDS if name in form.cleaned_data}
            saved = program_create(actor=actor, **fields)
        _keep_saved(obj, saved)


class AmbassadorForm(forms.ModelForm):
    class Meta:
        model = Ambassador
        fields = ["display_name", "is_active"]

    def clean_display_name(self) -> str:
        return _plain_text_field(self, "display_name", 100)


@admin.register(Ambassador)
class AmbassadorAdmin(admin.ModelAdmin):
    form = AmbassadorForm
    list_display = ["code", "email", "display_name", "program", "is_active", "created_at"]
    list_filter = ["program", "is_active"]
    search_fields = ["code", "email", "display_name"]
    list_select_related = ["program"]
    fields = ["program", "user", "email", "code", "display_name", "is_active", "created_at"]
    # Never the program: an ambassador's signups, counters and grants belong to it (enrol them in the
    # other program instead). Never the user or e-mail: they are who the ambassador is.
    readonly_fields = ["program", "user", "email", "code", "created_at"]

    def has_add_permission(self, request: Any) -> bool:
        # Enrolment goes through the join page or the API, which allocate codes and counters.
        return False

    def save_model(self, request: Any, obj: Ambassador, form: Any, change: bool) -> None:
        changed = {name: form.cleaned_data[name] for name in form.changed_data}
        _keep_saved(obj, ambassador_update(ambassador=obj, actor=Actor.for_user(request.user), **changed))


class ApiKeyForm(forms.ModelForm):
    revoke = forms.BooleanField(
        required=False, label="Revoke this key now", help_text="A revoked key stops working at once, for good."
    )

    class Meta:
        model = ApiKey
        fields = ["name"]

    def clean_name(self) -> str:
        return _plain_text_field(self, "name", 100)


@admin.action(description="Revoke the selected API keys", permissions=["revoke"])
def revoke_keys(modeladmin: Any, request: Any, queryset: Any) -> None:
    actor = Actor.for_user(request.user)
    principal = policies.Principal.from_request(request)
    revoked = 0
    for key in queryset.select_related("program"):
        if not policies.may_manage_api_keys(principal, key.program):
            messages.warning(request, f"{key.prefix}…: only a superuser revokes API keys.")
            continue
        was_live = key.revoked_at is None
        api_key_revoke(key=key, actor=actor)
        revoked += was_live
    messages.success(request, f"{revoked} API key(s) revoked.")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["prefix", "name", "program", "scopes", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["program"]
    # A key belongs to its program for good; its scopes are chosen when it is made.
    readonly_fields = ["program", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
    actions = [revoke_keys]

    def has_revoke_permission(self, request: Any) -> bool:
        # The action is offered to whoever the policy lets manage keys (superusers), whatever the Django
        # model permissions say.
        return bool(policies.may_manage_api_keys(policies.Principal.from_request(request), None))

    def get_fields(self, request: Any, obj: ApiKey | None = None) -> Any:
        fields = ["program", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
        return fields if obj is not None and obj.revoked_at else [*fields, "revoke"]

    def has_add_permission(self, request: Any) -> bool:
        # Keys are shown once: `manage.py create_api_key` prints them.
        return False

    def save_model(self, request: Any, obj: ApiKey, form: Any, change: bool) -> None:
        actor = Actor.for_user(request.user)
        key = obj
        if "name" in form.changed_data:
            key = api_key_update(key=key, actor=actor, name=form.cleaned_data["name"])
        if form.cleaned_data.get("revoke"):
            key = api_key_revoke(key=key, actor=actor)
        _keep_saved(obj, key)


@admin.register(AmbassadorCounters)
class AmbassadorCountersAdmin(admin.ModelAdmin):
    list_display = ["ambassador", "signups", "qualified", "conversions", "converted_amount", "updated_at"]
    list_select_related = ["ambassador"]
    readonly_fields = ["ambassador", "signups", "qualified", "conversions", "converted_amount", "updated_at"]

    def has_add_permission(self, request: Any) -> bool:
        return False


@admin.register(ProgramCounters)
class ProgramCountersAdmin(admin.ModelAdmin):
    list_display = ["program", "signups", "qualified", "updated_at"]
    readonly_fields = ["program", "signups", "qualified", "updated_at"]

    def has_add_permission(self, request: Any) -> bool:
        return False


# --- Webhooks: read only here; endpoints are configured through the API or the staff console, which
# check the URL (no SSRF) and audit the change (ambassadors.webhooks). ---------------------------------


class _ReadOnlyAdmin(admin.ModelAdmin):
    actions = None

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(_ReadOnlyAdmin):
    list_display = ["url", "program", "is_active", "disabled_reason", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "program__slug"]
    exclude = ["secret"]


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ["at", "status_code", "error", "duration_ms", "response_excerpt"]
    readonly_fields = fields

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(_ReadOnlyAdmin):
    list_display = ["event_id", "endpoint", "status", "attempts", "next_attempt_at", "last_status_code"]
    list_filter = ["status"]
    search_fields = ["event_id", "endpoint__url"]
    list_select_related = ["endpoint"]
    inlines = [WebhookAttemptInline]
