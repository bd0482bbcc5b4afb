"""The IP hash pepper rotates without letting a returning address through the velocity check, the old
peppers are forgotten for good, and the redirect still reads no pepper from the database."""

from __future__ import annotations

import datetime as dt
import io
import json
from unittest import mock

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils.crypto import salted_hmac

from core.models import AuditEvent
from core.progress import INTERRUPTED_EXIT_STATUS
from referrals.models import IpPepper, Signup
from referrals.services import peppers
from referrals.services.peppers import ACTIVATION_DELAY, MARGIN, ip_hash, ip_hashes
from referrals.services.signups import VELOCITY_WINDOW
from tests.referrals.helpers import CHROME, browser, redirect_queries

pytestmark = pytest.mark.django_db

START = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
VISITOR_IP = "203.0.113.77"


@pytest.fixture(autouse=True)
def clock(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_ip_pepper", *args, stdout=out)
    return out.getvalue()


def subscribe_from(program, email: str, ip: str = VISITOR_IP) -> Signup:
    """A new browser (no visitor cookie) at `ip` fills in the hosted form: only the address links them."""
    client = Client(HTTP_USER_AGENT=CHROME, REMOTE_ADDR=ip)
    response = client.post(f"/p/{program.slug}/subscribe", {"email": email})
    assert response.status_code == 200, response.content
    return Signup.objects.get(program=program, email=email)


def test_before_any_rotation_the_hash_is_the_one_keyed_with_secret_key():
    # Hashes recorded before peppers existed stay comparable: nothing changes until the first rotation.
    assert not IpPepper.objects.exists()
    assert ip_hash(VISITOR_IP) == salted_hmac("parrain.ip", VISITOR_IP, algorithm="sha256").hexdigest()
    assert ip_hashes(VISITOR_IP) == [ip_hash(VISITOR_IP)]


def test_a_visitor_signing_up_before_and_after_a_rotation_is_still_caught_by_velocity(program, clock):
    program.velocity_limit = 2
    program.save()
    first = subscribe_from(program, "first@example.org")
    second = subscribe_from(program, "second@example.org")
    assert {first.status, second.status} == {Signup.Status.QUALIFIED}

    clock.move_to(START + dt.timedelta(hours=1), tick=False)
    rotate()
    clock.move_to(START + dt.timedelta(hours=1) + ACTIVATION_DELAY + dt.timedelta(seconds=1), tick=False)
    third = subscribe_from(program, "third@example.org")

    assert third.ip_hash != first.ip_hash, "the new pepper hashes the new signup"
    assert (third.status, third.reason) == (Signup.Status.PENDING_REVIEW, Signup.Reason.VELOCITY)
    assert third.reason_detail.startswith("3rd signup from the same IP address")
    # Another address is not held: the old pepper's hashes match only the address they were made from.
    assert subscribe_from(program, "neighbour@example.org", ip="203.0.113.78").status == Signup.Status.QUALIFIED


def test_two_rotations_inside_the_window_still_link_all_three_peppers(program, clock):
    program.velocity_limit = 3
    program.save()
    subscribe_from(program, "a@example.org")
    for hours in (2, 4):
        clock.move_to(START + dt.timedelta(hours=hours), tick=False)
        rotate("--force")
        clock.move_to(START + dt.timedelta(hours=hours) + ACTIVATION_DELAY, tick=False)
        subscribe_from(program, f"after{hours}@example.org")
    assert len(set(Signup.objects.values_list("ip_hash", flat=True))) == 3
    assert len(ip_hashes(VISITOR_IP)) == 3

    fourth = subscribe_from(program, "d@example.org")

    assert fourth.reason == Signup.Reason.VELOCITY


def test_a_new_pepper_hashes_only_once_every_process_has_loaded_it(clock):
    before = ip_hash(VISITOR_IP)
    rotate()

    # Another process may still hold the old list for CACHE_SECONDS: the new pepper waits twice that.
    assert ip_hash(VISITOR_IP) == before
    assert before in ip_hashes(VISITOR_IP) and len(ip_hashes(VISITOR_IP)) == 2
    clock.move_to(START + ACTIVATION_DELAY, tick=False)
    assert ip_hash(VISITOR_IP) != before
    assert ip_hashes(VISITOR_IP)[1] == before


def test_peppers_out_of_the_window_and_margin_are_deleted_and_their_hashes_no_longer_match(program, clock):
    rotate()
    first = IpPepper.objects.get()
    clock.move_to(START + dt.timedelta(days=30), tick=False)
    rotate()
    second = IpPepper.objects.latest("created_at")
    clock.move_to(START + dt.timedelta(days=30) + ACTIVATION_DELAY, tick=False)
    signed_up = subscribe_from(program, "old@example.org")  # hashed with the second pepper

    third_rotation = START + dt.timedelta(days=60)
    clock.move_to(third_rotation, tick=False)
    assert "created=1, purged=1" in rotate()
    # The first stopped hashing 30 days ago: gone. The second hashes until the third takes over: kept.
    assert set(IpPepper.objects.values_list("pk", flat=True)) == {second.pk, IpPepper.objects.latest("created_at").pk}
    assert not IpPepper.objects.filter(pk=first.pk).exists()

    # The second stopped hashing when the third took over; kept for the velocity window and the margin...
    stopped = third_rotation + ACTIVATION_DELAY
    clock.move_to(stopped + VELOCITY_WINDOW + MARGIN - dt.timedelta(seconds=1), tick=False)
    assert "purged=0" in rotate()
    assert IpPepper.objects.filter(pk=second.pk).exists()
    # ...and no longer.
    clock.move_to(stopped + VELOCITY_WINDOW + MARGIN + dt.timedelta(seconds=1), tick=False)
    assert "purged=1" in rotate("--force")
    assert not IpPepper.objects.filter(pk=second.pk).exists()
    assert signed_up.ip_hash not in ip_hashes(VISITOR_IP), "nothing can link the old hash to the address"
    # SECRET_KEY's hashes, from before the first rotation, are no longer looked for either.
    assert salted_hmac("parrain.ip", VISITOR_IP, algorithm="sha256").hexdigest() not in ip_hashes(VISITOR_IP)


def test_the_rotation_is_audited_without_its_secret(clock):
    output = rotate()

    pepper = IpPepper.objects.get()
    assert output.startswith("rotate IP pepper: 1/1 in ")
    assert "created=1, purged=0" in output
    event = AuditEvent.objects.get(action="ip_pepper.rotated")
    assert event.object_id == str(pepper.pk)
    assert event.after == {
        "pepper": pepper.pk,
        "hashes_from": (START + ACTIVATION_DELAY).isoformat(),
        "purged": 0,
    }
    assert pepper.secret not in json.dumps([event.before, event.after, event.reason])
    assert pepper.secret not in str(pepper)


def test_a_second_run_right_after_does_nothing_and_force_rotates_anyway(clock):
    rotate()
    clock.move_to(START + dt.timedelta(hours=1), tick=False)

    again = rotate()

    assert "created=0, purged=0" in again
    assert IpPepper.objects.count() == 1
    assert AuditEvent.objects.filter(action="ip_pepper.rotated").count() == 1
    assert "created=1" in rotate("--force")
    assert IpPepper.objects.count() == 2


def test_an_interrupted_rotation_leaves_nothing_half_done_and_the_rerun_completes(clock):
    out = io.StringIO()
    with (
        mock.patch.object(peppers, "_purge", side_effect=KeyboardInterrupt),
        pytest.raises(SystemExit) as exit_info,
    ):
        call_command("rotate_ip_pepper", stdout=out)

    assert exit_info.value.code == INTERRUPTED_EXIT_STATUS
    assert "run the command again to resume" in out.getvalue()
    assert not IpPepper.objects.exists()
    assert not AuditEvent.objects.filter(action="ip_pepper.rotated").exists()

    assert "created=1" in rotate()
    assert IpPepper.objects.count() == 1


def test_the_redirect_reads_the_peppers_once_a_minute_not_once_a_click(ambassador, django_assert_num_queries):
    rotate()
    peppers.ip_peppers_forget()  # a process that just started

    # The peppers (a table of a few rows), then the redirect's own statement(s).
    with django_assert_num_queries(1 + redirect_queries()):
        assert browser().get(f"/r/{ambassador.code}").status_code == 302
    with django_assert_num_queries(redirect_queries()):
        assert browser().get(f"/r/{ambassador.code}").status_code == 302

    a_minute_later = peppers.time.monotonic() + peppers.CACHE_SECONDS
    with (
        mock.patch.object(peppers.time, "monotonic", return_value=a_minute_later),
        django_assert_num_queries(1 + redirect_queries()),
    ):
        assert browser().get(f"/r/{ambassador.code}").status_code == 302


def test_beat_rotates_monthly_and_a_second_delivery_changes_nothing(settings):
    from referrals.tasks import rotate_ip_pepper

    entry = settings.CELERY_BEAT_SCHEDULE["rotate-ip-pepper"]
    assert (entry["task"], entry["schedule"]) == ("referrals.rotate_ip_pepper", 30 * 86400.0)
    assert rotate_ip_pepper.delay().get() is True
    assert rotate_ip_pepper.delay().get() is False
    assert IpPepper.objects.count() == 1
    assert AuditEvent.objects.get(action="ip_pepper.rotated").actor_label == "referrals.rotate_ip_pepper"
