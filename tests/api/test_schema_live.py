"""Every operation of the published schema over real HTTP, on a live server with PostgreSQL.

schemathesis feeds each operation its documented examples and generated input, sent by `requests` to
pytest-django's live server: never a 5xx, and every answer (2xx and the documented 4xx alike) is what the
schema says. Calls carry a key of the program with every scope; the operations that refuse keys are called
as a signed-in superuser (a session and its CSRF token). Path parameters are pointed at real objects, so the
calls reach past the 404s. tests/referrals/test_api_schema_fuzz.py is the quicker in-process run.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from ambassadors.models import WebhookDelivery
from ambassadors.services import api_key_create
from ambassadors.webhooks import endpoint_create
from core import clock
from core.actors import Actor
from core.models import OutboxMessage
from referrals.services import conversion_record, signup_record
from rewards.models import RewardGrant, RewardTier
from rewards.services.contests import contest_create
from rewards.services.tiers import tier_create
from tests.factories import ProgramFactory, UserFactory, enroll

pytestmark = pytest.mark.postgres

# Reading the schema touches no table, so it can be loaded while the tests are collected.
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())

EXAMPLES = 10  # per operation and generation mode (valid, then invalid input): about 45 s in all
CSRF = "h13livecsrfsecretabcdefghijklmno"  # a CSRF secret (32 letters) sent as cookie and header
# A receiver that refuses at once: a resend delivers (Celery runs eagerly in tests) without waiting on a network.
HOOK_URL = "http://127.0.0.1:9/parrain-hook"


@pytest.fixture
def scene(settings, live_server) -> dict[str, Any]:
    """One of each object the operations act on, committed for the live server's thread to see."""
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    system = Actor.system("test")
    program = ProgramFactory(slug="book-launch", name="Book launch", base_price=Decimal("20.00"))
    ana = enroll(program, "ana@example.com", display_name="Ana", code="ANA2026")
    bob = enroll(program, "bob@example.com", display_name="Bob", code="BOBCODE")
    tier = tier_create(
        program=program, name="One friend", kind=RewardTier.Kind.INDIVIDUAL,
        metric=RewardTier.Metric.QUALIFIED_SIGNUPS, threshold=Decimal("1"),
        reward_type=RewardTier.RewardType.PERCENT_VOUCHER, reward_value=Decimal("20"), actor=system,
    )  # fmt: skip
    signup = signup_record(program=program, email="friend@example.org", referral_code=ana.code, actor=system)[0]
    conversion_record(program=program, actor=system, external_id="order-1001", amount="19.90", currency="EUR",
                      email="friend@example.org")  # fmt: skip
    held = signup_record(program=program, email="held@mailinator.com", referral_code=bob.code, actor=system)[0]
    contest = contest_create(
        program=program, actor=system, name="Launch week", prize_text="A signed first edition",
        starts_at=clock.now() - timedelta(days=1), ends_at=clock.now() + timedelta(days=6),
    )  # fmt: skip
    endpoint = endpoint_create(program=program, actor=system, url=HOOK_URL, event_types=["reward.unlocked"])
    message = OutboxMessage.objects.filter(program_id=program.pk).order_by("id").first()
    assert message is not None
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, message=message, event_id=f"msg_{message.pk}", status=WebhookDelivery.Status.SUCCEEDED,
        attempts=1, last_status_code=200, created_at=clock.now(),
    )  # fmt: skip
    superuser = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(superuser)
    values = {
        "key": api_key_create(actor=system, program=program, scopes=["track", "read", "manage"])[1],
        "session": client.cookies["sessionid"].value,
        "path": {
            "slug": program.slug,
            "code": ana.code,
            "signup_id": signup.pk,
            "tier_id": tier.pk,
            "contest_id": contest.pk,
            "external_id": "order-1001",
            "voucher_code": RewardGrant.objects.get(ambassador=ana).voucher_code,
            "endpoint_id": endpoint.pk,
            "delivery_id": delivery.pk,
        },
        "held_signup_id": held.pk,
    }
    from tests.core.permission_rows_payouts_api import scene_kwargs as payout_kwargs

    values["path"].update(payout_kwargs({"program": program}))
    return values


def takes_keys(operation: Any) -> bool:
    security = operation.definition.raw.get("security")
    return security is None or any("apiKey" in requirement for requirement in security)


def operations() -> list[Any]:
    found = [result.ok() for result in schema.get_all_operations()]
    # Ana's voucher first, while a refund or an override has not taken her reward back; what renames or removes
    # the scene's objects last: a program PATCH may change its slug.
    return sorted(found, key=lambda op: ("/vouchers/" not in op.path, op.method.upper() == "DELETE",
                                         op.path == "/api/v1/programs/{slug}/"))  # fmt: skip


def exercise(operation: Any, scene: dict[str, Any], base_url: str, failures: list[str]) -> set[int]:
    """Valid, then invalid input to one operation: the status codes it answered; each failure noted."""
    names = {parameter.name for parameter in operation.path_parameters}
    path = {name: value for name, value in scene["path"].items() if name in names}
    if operation.path.endswith("/review"):
        path["signup_id"] = scene["held_signup_id"]
    session = requests.Session()
    if takes_keys(operation):
        headers = {"Authorization": f"Bearer {scene['key']}"}
    else:
        session.cookies.update({"sessionid": scene["session"], "csrftoken": CSRF})
        headers = {"X-CSRFToken": CSRF}
    answered: set[int] = set()

    def run(strategy: Any, label: str, examples: int) -> None:
        @given(case=strategy)
        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
        def call(case: Any) -> None:
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=10)
            answered.add(response.status_code)
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

        try:
            call()
        except Unsatisfiable:
            assert label == "negative"  # nothing of the request left to get wrong: the path is all fixed
        except Exception as error:  # noqa: BLE001 - each operation's failure is reported, then the next runs
            failures.append(f"{operation.method.upper()} {operation.path} ({label}): {error}")

    # The documented examples (config/schema_examples.py), then generated valid and invalid input.
    for strategy in schema.get_strategies_from_examples(operation, path_parameters=path or None):
        run(strategy, "documented example", 2)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        run(operation.as_strategy(mode, path_parameters=path or None), mode.value, EXAMPLES)
    return answered


def test_every_operation_over_http_answers_what_the_schema_says(scene, live_server):
    failures: list[str] = []
    reached = {f"{op.method.upper()} {op.path}": exercise(op, scene, live_server.url, failures) for op in operations()}

    assert len(reached) >= 30 and all(reached.values())
    # Pointed at real objects, the calls get past the 404s: nearly every operation answers a success.
    succeeded = [name for name, codes in reached.items() if any(200 <= code < 300 for code in codes)]
    assert len(succeeded) >= len(reached) - 4, {name: sorted(codes) for name, codes in reached.items()}
    assert not failures, "\n\n".join(failures)


def test_no_path_answers_a_server_error_to_the_methods_every_view_has(scene, live_server):
    """OPTIONS (DRF's metadata) and HEAD exist on every view without being operations of the schema."""
    answers = {}
    for operation in operations():
        path = operation.path.format(**scene["path"])
        for method in ("OPTIONS", "HEAD"):
            response = requests.request(
                method, live_server.url + path, headers={"Authorization": f"Bearer {scene['key']}"}, timeout=10
            )
            answers[f"{method} {path}"] = response.status_code

    assert len(answers) >= 40
    assert [call for call, status in answers.items() if status >= 500] == []
