"""Examples for the OpenAPI schema: one realistic request and answer per operation and status code.

Kept here rather than on the views, so the documentation of the whole API reads in one place: the design's
book-launch program (slug `book-launch`, EUR), Ana (code ANA2026) who brought friend@example.org, amounts
as strings ("19.90"), times ISO 8601 in UTC. `add_examples`, a drf-spectacular postprocessing hook, writes
them into the schema, documents each operation's 4xx answers in the one error shape (README "Errors"), and
leaves alone the examples a view declares itself. tests/api/test_schema_examples.py checks that every
request body and answer has an example, and that each example validates against its own schema.

List answers are written as cursor pages (`{"next", "previous", "results"}`); while a list still answers
a bare array or a page with a `count`, the hook adapts the example to the schema it documents.
"""

from __future__ import annotations

import copy
from typing import Any

API = "https://parrain.example.com/api/v1/programs/book-launch"
CURSOR = "cD0yMDI2LTA1LTA0KzA5JTNBMTIlM0EwMC4wMDAwMDAlMkIwMCUzQTAw"

# --- The objects the answers show --------------------------------------------------------------------
PROGRAM = {
    "slug": "book-launch",
    "name": "Book launch",
    "description": "Bring your friends to the launch: the more we are, the lower the price.",
    "destination_url": "https://shop.example.com/book",
    "allowed_redirect_hosts": ["shop.example.com"],
    "attribution_window_days": 30,
    "attribution_model": "last_click",
    "attribution_cookie": True,
    "click_retention_months": 13,
    "hold_period_days": 14,
    "currency": "EUR",
    "base_price": "20.00",
    "floor_price": "12.00",
    "velocity_limit": 20,
    "leaderboard_public": True,
    "status": "open",
    "share_message": "I pre-ordered the book: join with my link and the price drops for all of us.",
    "influencer_min_clicks": 50,
    "influencer_max_rate": "2.00",
    "ambassador_min_qualified": 3,
    "ambassador_min_rate": "10.00",
    "created_at": "2026-04-01T09:00:00Z",
}
PROGRAM_INPUT = {k: v for k, v in PROGRAM.items() if k != "created_at"}

AMBASSADOR = {
    "email": "ana@example.com",
    "code": "ANA2026",
    "link": "https://parrain.example.com/r/ANA2026",
    "display_name": "Ana",
}
SIGNUP = {
    "id": 4812,
    "email": "friend@example.org",
    "external_id": "customer-7731",
    "status": "qualified",
    "reason": "",
    "ambassador": "ANA2026",
    "method": "code",
    "created_at": "2026-05-04T09:12:00Z",
}
CONVERSION = {
    "id": 2290,
    "external_id": "order-1001",
    "email": "friend@example.org",
    "ambassador": "ANA2026",
    "amount": "19.90",
    "currency": "EUR",
    "status": "pending",
    "occurred_at": "2026-05-04T09:30:00Z",
    "approve_after": "2026-05-18T09:30:00Z",
    "created_at": "2026-05-04T09:30:02Z",
}
TIER = {
    "id": 7,
    "name": "Three friends",
    "kind": "individual",
    "metric": "qualified_signups",
    "threshold": "3.00",
    "repeat_every": None,
    "reward_type": "percent_voucher",
    "reward_value": "15.00",
    "reward_text": "15% off your next order",
    "referee_reward_type": "fixed_voucher",
    "referee_reward_value": "5.00",
    "step": None,
    "drop_type": "",
    "drop_value": None,
    "voucher_valid_days": 90,
    "is_active": True,
    "created_at": "2026-04-01T09:05:00Z",
}
TIER_INPUT = {k: v for k, v in TIER.items() if k not in ("id", "created_at")}
CONTEST = {
    "id": 3,
    "name": "Launch week",
    "prize_text": "A signed first edition",
    "starts_at": "2026-05-01T00:00:00Z",
    "ends_at": "2026-05-08T00:00:00Z",
    "winners_count": 3,
    "metric": "qualified_signups",
    "status": "running",
    "frozen_at": None,
    "winners": [],
    "created_at": "2026-04-20T10:00:00Z",
}
CONTEST_INPUT = {k: CONTEST[k] for k in ("name", "prize_text", "starts_at", "ends_at", "winners_count", "metric")}
WEBHOOK = {
    "id": 12,
    "url": "https://shop.example.com/parrain",
    "description": "Shop back end",
    "event_types": ["reward.unlocked", "conversion.approved"],
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "is_active": True,
    "disabled_reason": "",
    "created_at": "2026-04-02T08:00:00Z",
}
WEBHOOK_INPUT = {k: WEBHOOK[k] for k in ("url", "description", "event_types", "is_active")}
DELIVERY = {
    "id": 501,
    "event_id": "evt_2vJ6mC0yTQ8aXb1k",
    "event": "reward.unlocked",
    "status": "succeeded",
    "attempts": 2,
    "next_attempt_at": None,
    "last_status_code": 200,
    "last_response": "ok",
    "created_at": "2026-05-04T09:40:00Z",
    "payload": {
        "type": "reward.unlocked",
        "timestamp": "2026-05-04T09:40:00Z",
        "data": {"object": "reward", "id": "88", "program_id": 1, "ambassador": "ANA2026", "tier": "Three friends"},
    },
    "attempt_log": [
        {"at": "2026-05-04T09:40:01Z", "status_code": 503, "error": "", "duration_ms": 212,
         "response_excerpt": "Service Unavailable"},
        {"at": "2026-05-04T09:40:06Z", "status_code": 200, "error": "", "duration_ms": 87, "response_excerpt": "ok"},
    ],
}  # fmt: skip
AUDIT_EVENT = {
    "id": 90211,
    "created_at": "2026-05-04T09:30:02Z",
    "program_id": 1,
    "actor_type": "api_key",
    "actor_id": "pk_3",
    "actor_label": "Shop back end",
    "action": "conversion.recorded",
    "object_type": "conversion",
    "object_id": "2290",
    "before": None,
    "after": {"external_id": "order-1001", "amount": "19.90", "currency": "EUR", "status": "pending"},
    "reason": "",
}


def page(*results: Any) -> dict[str, Any]:
    """A cursor page: the first one, with a link to the next."""
    return {"next": f"{API}/signups/?cursor={CURSOR}", "previous": None, "results": list(results)}


def detail(message: str) -> dict[str, str]:
    return {"detail": message}


NOT_FOUND = detail("Not found.")
UNAUTHENTICATED = detail("Authentication credentials were not provided.")
FORBIDDEN = detail("You do not have permission to perform this action.")
THROTTLED = detail("Request was throttled. Expected available in 42 seconds.")

# --- Per operationId: "request" and each status code -------------------------------------------------
EXAMPLES: dict[str, dict[str | int, Any]] = {
    "v1_audit_events_list": {200: page(AUDIT_EVENT)},
    "v1_me_retrieve": {
        200: {
            "username": "ana@example.com",
            "programs": [
                {
                    **AMBASSADOR,
                    "stats": {"clicks": 42, "signups": 5, "qualified": 4, "conversions": 2},
                    "rewards": [],
                    "program": {"slug": "book-launch", "name": "Book launch", "currency": "EUR"},
                    "progress": {"tier": "Three friends", "done": 4, "needed": 6},
                    "channels": [],
                }
            ],
        },
    },
    "v1_programs_list": {200: page(PROGRAM)},
    "v1_programs_create": {
        "request": PROGRAM_INPUT,
        201: PROGRAM,
        400: {"slug": ["A program with this slug already exists."]},
    },
    "v1_programs_retrieve": {200: PROGRAM},
    "v1_programs_partial_update": {
        "request": {"status": "paused"},
        200: {**PROGRAM, "status": "paused"},
        400: {"floor_price": ["The floor price cannot be above the base price."]},
    },
    "v1_programs_ambassadors_create": {
        "request": {"email": "ana@example.com", "display_name": "Ana", "code": "ANA2026"},
        200: AMBASSADOR,
        201: AMBASSADOR,
        400: {"email": ["Enter a valid email address."]},
    },
    "v1_programs_ambassadors_retrieve": {
        200: {
            **AMBASSADOR,
            "stats": {"clicks": 42, "signups": 5, "qualified": 4, "conversions": 2},
            "rewards": [
                {"tier": "Three friends", "occurrence": 1, "status": "unlocked", "voucher_code": "7KQ2-M9XH-C4TR-PW3N"}
            ],
        },
    },
    "v1_programs_contests_list": {200: page(CONTEST)},
    "v1_programs_contests_create": {
        "request": CONTEST_INPUT,
        201: {**CONTEST, "status": "scheduled"},
        400: {"ends_at": ["The end must come after the start."]},
    },
    "v1_programs_contests_retrieve": {200: CONTEST},
    "v1_programs_contests_partial_update": {
        "request": {"prize_text": "A signed first edition and a tote bag"},
        200: {**CONTEST, "prize_text": "A signed first edition and a tote bag"},
        400: {"winners_count": ["Ensure this value is greater than or equal to 1."]},
    },
    "v1_programs_contests_standing_retrieve": {
        200: {
            "id": 3,
            "name": "Launch week",
            "prize_text": "A signed first edition",
            "metric": "qualified_signups",
            "status": "running",
            "starts_at": "2026-05-01T00:00:00Z",
            "ends_at": "2026-05-08T00:00:00Z",
            "seconds_left": 226800,
            "winners_count": 3,
            "frozen": False,
            "results": [
                {"rank": 1, "display_name": "Ana", "score": 4, "is_winner": True},
                {"rank": 2, "display_name": "Bob", "score": 2, "is_winner": True},
            ],
        },
    },
    "v1_programs_conversions_create": {
        "request": {
            "external_id": "order-1001",
            "email": "friend@example.org",
            "amount": "19.90",
            "currency": "EUR",
            "occurred_at": "2026-05-04T09:30:00Z",
        },
        200: CONVERSION,
        201: CONVERSION,
        400: {"amount": ["A valid number is required."]},
        409: {"external_id": ["A conversion with this external_id was already recorded with a different body."]},
    },
    "v1_programs_conversions_retrieve": {200: CONVERSION},
    "v1_programs_conversions_refund_create": {
        "request": {"reason": "Order returned by the customer"},
        200: {**CONVERSION, "status": "reversed"},
        400: {"reason": ["Ensure this field has no more than 2000 characters."]},
    },
    "v1_programs_leaderboard_retrieve": {
        200: {
            "results": [
                {"rank": 1, "display_name": "Ana", "qualified": 4},
                {"rank": 2, "display_name": "Bob", "qualified": 2},
            ]
        },
    },
    "v1_programs_price_retrieve": {
        200: {
            "currency": "EUR",
            "base_price": "20.00",
            "current_price": "19.00",
            "floor_price": "12.00",
            "subscribers": 7,
            "step": 5,
            "next_drop_at": 10,
            "milestones_reached": 1,
        },
    },
    "v1_programs_signups_create": {
        "request": {
            "email": "friend@example.org",
            "external_id": "customer-7731",
            "referral_code": "ANA2026",
            "referee_ip": "203.0.113.7",
            "wants_price_news": True,
        },
        200: SIGNUP,
        201: SIGNUP,
        400: {"email": ["Enter a valid email address."]},
        429: THROTTLED,
    },
    "v1_programs_signups_list": {
        200: page(
            SIGNUP,
            {
                **SIGNUP,
                "id": 4813,
                "email": "cousin@example.net",
                "external_id": "customer-7740",
                "status": "pending_review",
                "reason": "disposable_email",
                "created_at": "2026-05-04T10:01:00Z",
            },
        ),
    },
    "v1_programs_signups_override_create": {
        "request": {"ambassador_code": "ANA2026", "reason": "Ana brought her in at the launch evening"},
        200: {**SIGNUP, "method": "manual", "reason": "reviewed"},
        400: {"ambassador_code": ["No ambassador with this code in this program."]},
    },
    "v1_programs_signups_review_create": {
        "request": {"decision": "approve", "reason": "A real person: she wrote to support"},
        200: {**SIGNUP, "id": 4813, "email": "cousin@example.net", "reason": "reviewed"},
        400: {"decision": ['"maybe" is not a valid choice.']},
        409: {"status": ["This signup is not waiting for review."]},
    },
    "v1_programs_tiers_list": {200: page(TIER)},
    "v1_programs_tiers_create": {
        "request": TIER_INPUT,
        201: TIER,
        400: {"threshold": ["An individual tier needs a threshold."]},
    },
    "v1_programs_tiers_retrieve": {200: TIER},
    "v1_programs_tiers_partial_update": {
        "request": {"reward_value": "20.00"},
        200: {**TIER, "reward_value": "20.00"},
        400: {"reward_value": ["A valid number is required."]},
    },
    "v1_programs_webhooks_list": {200: page(WEBHOOK)},
    "v1_programs_webhooks_create": {
        "request": WEBHOOK_INPUT,
        201: WEBHOOK,
        400: {"url": ["Deliveries go only to public http(s) addresses."]},
    },
    "v1_programs_webhooks_retrieve": {200: WEBHOOK},
    "v1_programs_webhooks_partial_update": {
        "request": {"event_types": ["reward.unlocked", "reward.redeemed"]},
        200: {**WEBHOOK, "event_types": ["reward.unlocked", "reward.redeemed"]},
        400: {"event_types": ['"reward.sent" is not a valid choice.']},
    },
    "v1_programs_webhooks_destroy": {},
    "v1_programs_webhooks_deliveries_list": {200: page(DELIVERY)},
    "v1_programs_webhooks_deliveries_resend_create": {
        202: {**DELIVERY, "status": "pending", "next_attempt_at": "2026-05-04T11:00:00Z"},
    },
    "v1_programs_embed_tokens_create": {
        "request": {"email": "ana@example.com"},
        201: {
            "token": "eyJqIjoiOWYyYzQxIiwicCI6MSwiYSI6NDJ9:1uXk2P:Qm3v0vYw1a8bS2k4nq3x7YB5rZ0",
            "url": (
                "https://parrain.example.com/embed/dashboard?program=book-launch"
                "&token=eyJqIjoiOWYyYzQxIiwicCI6MSwiYSI6NDJ9%3A1uXk2P%3AQm3v0vYw1a8bS2k4nq3x7YB5rZ0"
            ),
            "expires_at": "2026-05-04T09:17:00Z",
        },
        400: {"email": ["Give either email or external_id."]},
        404: detail(
            "This customer is not an ambassador of this program. Enrol them first "
            '(POST /api/v1/programs/<slug>/ambassadors), or pass "enrol": true.'
        ),
        429: THROTTLED,
    },
    # The voucher views declare their own examples: these only fill what they leave out.
    "v1_programs_vouchers_retrieve": {},
    "v1_programs_vouchers_redeem_create": {404: NOT_FOUND},
}

# --- The error answers -------------------------------------------------------------------------------
ERROR = "Error"
FIELD_ERRORS = "FieldErrors"
ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    ERROR: {
        "type": "object",
        "description": 'Refused, unknown or rate limited: `{"detail": "<message>"}`.',
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    FIELD_ERRORS: {
        "type": "object",
        "description": (
            'Bad input or a conflict: `{"<field>": ["<message>", ...]}` for each field at fault, or '
            '`{"detail": "<message>"}`.'
        ),
        "additionalProperties": {
            "oneOf": [
                {"type": "string"},
                {"type": "array", "items": {}},
                {"type": "object"},
            ]
        },
    },
}
ERROR_ANSWERS: dict[int, tuple[str, str, Any]] = {
    400: ("Bad input.", FIELD_ERRORS, {"email": ["Enter a valid email address."]}),
    401: ("No or invalid credentials.", ERROR, UNAUTHENTICATED),
    403: ("Not allowed.", ERROR, FORBIDDEN),
    404: ("Unknown, or not yours to see.", ERROR, NOT_FOUND),
    409: ("Conflict with what is already recorded.", FIELD_ERRORS, detail("Conflict.")),
    429: ("Rate limited: wait `Retry-After` seconds.", ERROR, THROTTLED),
}


def _resolve(schema: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = result["components"]["schemas"][name]
    return schema


def _fit(value: Any, schema: dict[str, Any], result: dict[str, Any]) -> Any:
    """A cursor-page example, fitted to a list that still answers a bare array or a numbered page."""
    if not (isinstance(value, dict) and set(value) == {"next", "previous", "results"}):
        return value
    resolved = _resolve(schema, result)
    if resolved.get("type") == "array":
        return value["results"]
    if "count" in resolved.get("required", []):
        return {"count": len(value["results"]), **value}
    return value


def _has_example(content: dict[str, Any]) -> bool:
    return "example" in content or bool(content.get("examples"))


def _set_example(content: dict[str, Any], value: Any, summary: str, result: dict[str, Any]) -> None:
    if not _has_example(content):
        value = _fit(copy.deepcopy(value), content.get("schema", {}), result)
        content["examples"] = {summary.replace(" ", ""): {"value": value, "summary": summary}}


def _error_answers(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    """The 4xx answers an operation can give: bad body or query, credentials refused, unknown object."""
    codes = []
    if "requestBody" in operation or any(p.get("in") == "query" for p in operation.get("parameters", [])):
        codes.append(400)
    security = operation.get("security")
    if security is None or any(requirement for requirement in security):
        codes += [401, 403]
    if "{" in path:
        codes.append(404)
    return codes


def add_examples(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the examples above, and the documented 4xx answers."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in ERROR_SCHEMAS.items():
        schemas.setdefault(name, schema)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            examples = EXAMPLES.get(operation["operationId"], {})
            responses = operation.setdefault("responses", {})
            errors = set(_error_answers(path, method, operation))
            errors |= {int(code) for code in examples if code != "request" and int(code) >= 400}
            for code in sorted(errors):
                description, schema_name, _ = ERROR_ANSWERS[code]
                shape = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}}
                responses.setdefault(str(code), {"description": description, "content": shape})
            body = operation.get("requestBody", {}).get("content", {})
            if "request" in examples:
                for content in body.values():
                    _set_example(content, examples["request"], "Request", result)
            for code, answer in responses.items():
                value = examples.get(int(code)) if code.isdigit() else None
                if value is None and code.isdigit() and int(code) in ERROR_ANSWERS:
                    value = ERROR_ANSWERS[int(code)][2]
                if value is None:
                    continue
                for content in answer.get("content", {}).values():
                    _set_example(content, value, f"{code} answer" if int(code) >= 400 else "Answer", result)
    return result
