"""The e-mails of the program: a reward unlocked, a friend subscribed, the price dropped. Each goes once per
recipient and event however often its task is delivered, and the bulk ones carry a working RFC 8058
one-click unsubscribe."""

from __future__ import annotations

import smtplib
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend

from core.actors import Actor
from core.notifications import (
    FRIEND_SUBSCRIBED,
    PRICE_DROPPED,
    email_opt_out,
    unsubscribe_read,
    unsubscribe_token,
)
from referrals.services import signup_record
from referrals.tasks import friend_subscribed_notify
from rewards import notifications
from rewards.models import Milestone, RewardGrant
from rewards.services import ambassador_recalculate
from rewards.tasks import grant_notify, price_drop_announce, price_drop_send
from tests.factories import enroll
from tests.rewards.conftest import SHOP, price_ladder, subscribe, voucher_tier

pytestmark = pytest.mark.django_db


class FailsOnce(EmailBackend):
    """An SMTP server that drops the connection on the first message, then accepts (an edge we do not own)."""

    failed = False

    def send_messages(self, messages):
        if not FailsOnce.failed:
            FailsOnce.failed = True
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


def _to(kind: str) -> list[str]:
    return sorted(m.to[0] for m in mail.outbox if kind in m.subject)


def _opt_out(address: str, program: Any, kind: str) -> None:
    request = unsubscribe_read(unsubscribe_token(recipient=address, program_id=program.pk, kind=kind))
    assert request is not None
    email_opt_out(request=request, actor=Actor.visitor())


# --- You unlocked a reward ----------------------------------------------------------------------------


def test_the_unlock_email_goes_once_when_its_task_is_delivered_again(program, ambassador, committed):
    voucher_tier(program, threshold=1)
    with committed():
        subscribe(program, ambassador)
    grant = RewardGrant.objects.get(ambassador=ambassador)
    assert _to("you unlocked") == ["ana@example.com"]

    grant_notify(grant.pk, "unlocked")  # the broker delivers the task again
    grant_notify.apply(args=[grant.pk, "unlocked"])  # and once more, through Celery's own call path

    assert _to("you unlocked") == ["ana@example.com"]
    assert grant.voucher_code in next(m for m in mail.outbox if "you unlocked" in m.subject).body


def test_an_smtp_hiccup_delays_the_unlock_email_without_losing_or_doubling_it(program, ambassador, settings):
    voucher_tier(program, threshold=1)
    subscribe(program, ambassador)  # not committed: no task ran yet
    ambassador_recalculate(ambassador_id=ambassador.pk)
    grant = RewardGrant.objects.get(ambassador=ambassador)
    settings.EMAIL_BACKEND = "tests.rewards.test_notification_emails.FailsOnce"
    FailsOnce.failed = False

    with pytest.raises(smtplib.SMTPServerDisconnected):  # the first delivery fails; Celery retries it
        grant_notify(grant.pk, "unlocked")
    grant_notify(grant.pk, "unlocked")  # the retry
    grant_notify(grant.pk, "unlocked")  # a redelivery of the retry

    assert _to("you unlocked") == ["ana@example.com"]


def test_a_reward_reached_again_after_a_revocation_is_announced_again_with_its_new_voucher(program, ambassador):
    voucher_tier(program, threshold=1)
    subscribe(program, ambassador)
    ambassador_recalculate(ambassador_id=ambassador.pk)
    grant = RewardGrant.objects.get(ambassador=ambassador)
    grant_notify(grant.pk, "unlocked")
    grant_notify(grant.pk, "revoked")
    RewardGrant.objects.filter(pk=grant.pk).update(voucher_code="NEW1-NEW2-NEW3-NEW4")  # as grant_reinstate does

    grant_notify(grant.pk, "unlocked")
    grant_notify(grant.pk, "unlocked")

    unlocked = [m for m in mail.outbox if "you unlocked" in m.subject]
    assert len(unlocked) == 2
    assert "NEW1-NEW2-NEW3-NEW4" in unlocked[1].body
    assert _to("withdrawn") == ["ana@example.com"]


# --- A friend subscribed through your link -----------------------------------------------------------


def test_the_ambassador_is_told_once_that_a_friend_subscribed_through_the_link(program, ambassador, committed):
    with committed():
        signup = subscribe(program, ambassador, email="friend@example.org")

    friend_subscribed_notify(signup.pk)  # redelivered

    (message,) = [m for m in mail.outbox if "a friend subscribed" in m.subject]
    assert message.to == ["ana@example.com"]
    assert "f•••@example.org" in message.body
    assert "friend@example.org" not in message.body
    url = message.extra_headers["List-Unsubscribe"].strip("<>")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url in message.body
    assert unsubscribe_read(url.rsplit("/", 1)[1]).kind == FRIEND_SUBSCRIBED


def test_no_friend_email_for_a_signup_held_for_review_or_after_an_opt_out(program, ambassador, committed):
    with committed():
        subscribe(program, ambassador, email="someone@mailinator.com")  # disposable: held for review
    _opt_out(ambassador.email_canonical, program, FRIEND_SUBSCRIBED)
    with committed():
        subscribe(program, ambassador, email="friend@example.org")

    assert _to("a friend subscribed") == []


# --- The price dropped -------------------------------------------------------------------------------


@pytest.fixture
def ladder(program, committed) -> dict[str, Any]:
    """Step 3: Ana and Bob are ambassadors, Bob unsubscribed from price news, Carl's ambassadorship ended;
    of three subscribers, two asked for price news."""
    price_ladder(program, step=3)
    enroll(program, "ana@example.com", display_name="Ana")
    bob = enroll(program, "bob@example.com", display_name="Bob")
    carl = enroll(program, "carl@example.com", display_name="Carl")
    type(carl).objects.filter(pk=carl.pk).update(is_active=False)
    _opt_out(bob.email_canonical, program, PRICE_DROPPED)
    with committed():
        for email, wants in [("keen@example.org", True), ("quiet@example.org", False), ("eager@example.org", True)]:
            signup_record(program=program, email=email, actor=SHOP, wants_price_news=wants)
    return {"program": program, "milestone": Milestone.objects.get(program=program)}


def test_a_price_drop_is_emailed_to_active_ambassadors_and_opted_in_subscribers_except_opt_outs(ladder):
    assert _to("price dropped") == ["ana@example.com", "eager@example.org", "keen@example.org"]


def test_a_price_drop_email_goes_once_when_its_tasks_are_delivered_again(ladder):
    milestone = ladder["milestone"]

    price_drop_announce(milestone.pk)  # the fan-out delivered again: every batch again
    for ambassador_ids, signup_ids in notifications.price_drop_batches(milestone_id=milestone.pk):
        price_drop_send(milestone.pk, ambassador_ids, signup_ids)

    assert _to("price dropped") == ["ana@example.com", "eager@example.org", "keen@example.org"]


def test_price_drop_batches_split_the_recipients_and_one_person_in_two_roles_gets_one_email(program, committed):
    price_ladder(program, step=50)
    ana = enroll(program, "ana@example.com", display_name="Ana")
    for n in range(4):
        enroll(program, f"amb{n}@example.com")
    signup_record(program=program, email="Ana+news@example.com", actor=SHOP, wants_price_news=True)  # Ana again
    for n in range(3):
        signup_record(program=program, email=f"sub{n}@example.org", actor=SHOP, wants_price_news=True)
    milestone = Milestone.objects.create(
        tier=program.tiers.get(),
        program=program,
        occurrence=1,
        count_at=50,
        price_after="19.00",
        reached_at=ana.created_at,
    )

    batches = list(notifications.price_drop_batches(milestone_id=milestone.pk, size=3))
    for ambassador_ids, signup_ids in batches:
        price_drop_send(milestone.pk, ambassador_ids, signup_ids)

    assert [len(a) + len(s) for a, s in batches] == [3, 3, 3]
    recipients = _to("price dropped")
    assert len(recipients) == len(set(recipients)) == 8  # Ana's two rows: one e-mail
    assert "ana@example.com" in recipients


class RefusesKeen(EmailBackend):
    """An SMTP server that refuses one address for good (an edge we do not own)."""

    def send_messages(self, messages):
        if any(m.to == ["keen@example.org"] for m in messages):
            raise smtplib.SMTPRecipientsRefused({"keen@example.org": (550, b"No such user")})
        return super().send_messages(messages)


def test_an_address_refused_for_good_does_not_hold_back_the_rest_of_its_batch(program, committed, settings):
    settings.EMAIL_BACKEND = "tests.rewards.test_notification_emails.RefusesKeen"
    price_ladder(program, step=3)
    with committed():
        for email in ("keen@example.org", "eager@example.org", "last@example.org"):
            signup_record(program=program, email=email, actor=SHOP, wants_price_news=True)

    assert _to("price dropped") == ["eager@example.org", "last@example.org"]


def test_a_price_drop_email_has_working_one_click_headers_and_a_visible_link(ladder, settings):
    message = next(m for m in mail.outbox if "price dropped" in m.subject and m.to == ["keen@example.org"])

    header = message.extra_headers["List-Unsubscribe"]
    assert header.startswith("<http://127.0.0.1:8000/u/") and header.endswith(">")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert header.strip("<>") in message.body
    rendered = message.message().as_string()
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in rendered
    assert "19,00" not in message.subject and "€19.00" in message.subject


def test_the_price_drop_email_is_in_french_for_a_french_recipient(program, committed, settings):
    settings.LANGUAGE_CODE = "fr"  # no saved choice: the site's language
    price_ladder(program, step=1)
    with committed():
        signup_record(program=program, email="claire@example.fr", actor=SHOP, wants_price_news=True)

    (message,) = [m for m in mail.outbox if m.to == ["claire@example.fr"]]
    assert "19,00 €" in message.subject  # rendered under translation.override("fr")
    assert "19,00\xa0€" in message.body


def test_no_price_drop_email_when_the_price_is_already_at_the_floor(program, committed):
    program.floor_price = program.base_price
    program.save()
    price_ladder(program, step=1)
    with committed():
        signup_record(program=program, email="keen@example.org", actor=SHOP, wants_price_news=True)

    assert Milestone.objects.filter(program=program).exists()
    assert _to("price dropped") == []


# --- With real workers -------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_workers_handed_the_unlock_email_ten_times_send_it_once(start_worker):
    import redis
    from django.conf import settings

    from core.models import Notification
    from tests.factories import ProgramFactory
    from tests.rewards.conftest import publishing_to, queue_drained, wait_until

    broker = settings.CELERY_BROKER_URL
    client = redis.Redis.from_url(broker)
    client.delete("celery", "unacked", "unacked_index", "unacked_mutex")
    client.close()
    program = ProgramFactory(slug="worker-mail")
    ana = enroll(program, "ana@example.com")
    voucher_tier(program, threshold=1)
    subscribe(program, ana)  # eager here: the grant exists and its e-mail went from this process
    grant = RewardGrant.objects.get(ambassador=ana)
    Notification.objects.all().delete()  # as if it had not gone yet: the workers race to send it
    workers = [start_worker(broker), start_worker(broker)]

    with publishing_to(broker):
        for _ in range(10):
            grant_notify.delay(grant.pk, "unlocked")
        wait_until(lambda: queue_drained(broker), timeout=30, what="the workers to run the 10 messages")
        wait_until(
            lambda: sum(w.log().count("rewards.grant_notify") for w in workers) >= 20,
            timeout=30,
            what="10 deliveries received and succeeded",
        )

    (marker,) = Notification.objects.filter(event_key__startswith=f"reward.unlocked:grant:{grant.pk}:")
    assert marker.sent_at is not None
    assert marker.attempts == 1  # one claim, one send: the nine other deliveries found it taken
