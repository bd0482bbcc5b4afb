"""The marker that sends each e-mail at most once per recipient and event, and not zero times after a failure."""

from __future__ import annotations

import smtplib
import threading
from datetime import timedelta

import pytest
import time_machine
from django.core import mail, signing
from django.core.mail import EmailMessage
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection

from core.models import Notification
from core.notifications import (
    LEASE,
    PRICE_DROPPED,
    notification_claim,
    notification_release,
    notification_sent,
    recipient_language,
    send_once,
    unsubscribe_read,
    unsubscribe_token,
)

pytestmark = pytest.mark.django_db

EVENT = "reward.unlocked:grant:1:ABCD"
ANA = "ana@example.com"


def _message() -> EmailMessage:
    return EmailMessage("Subject", "Body", "from@example.org", [ANA])


class FailsOnce(EmailBackend):
    """An SMTP server that hiccups on the first message, then accepts (the edge we do not own)."""

    failed = False

    def send_messages(self, messages):
        if not FailsOnce.failed:
            FailsOnce.failed = True
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


def test_the_first_claim_wins_and_a_second_claim_of_the_same_event_and_recipient_loses():
    assert notification_claim(event_key=EVENT, recipient=ANA) is True
    assert notification_claim(event_key=EVENT, recipient=ANA) is False
    # Another recipient, or another event, is another e-mail.
    assert notification_claim(event_key=EVENT, recipient="bob@example.com") is True
    assert notification_claim(event_key="reward.revoked:grant:1:ABCD", recipient=ANA) is True


def test_a_released_claim_after_a_failed_send_may_be_claimed_again():
    assert notification_claim(event_key=EVENT, recipient=ANA)
    notification_release(event_key=EVENT, recipient=ANA)

    assert notification_claim(event_key=EVENT, recipient=ANA) is True
    assert notification_claim(event_key=EVENT, recipient=ANA) is False
    assert Notification.objects.get().attempts == 2


def test_a_claim_whose_sender_vanished_is_taken_over_only_after_its_lease():
    with time_machine.travel("2026-03-01 10:00Z", tick=False) as traveller:
        assert notification_claim(event_key=EVENT, recipient=ANA)
        traveller.shift(LEASE - timedelta(seconds=1))
        assert notification_claim(event_key=EVENT, recipient=ANA) is False
        traveller.shift(timedelta(seconds=2))
        assert notification_claim(event_key=EVENT, recipient=ANA) is True


def test_a_sent_e_mail_is_never_claimed_again_even_long_after():
    with time_machine.travel("2026-03-01 10:00Z", tick=False) as traveller:
        assert notification_claim(event_key=EVENT, recipient=ANA)
        notification_sent(event_key=EVENT, recipient=ANA)
        notification_release(event_key=EVENT, recipient=ANA)  # a late failure report changes nothing
        traveller.shift(timedelta(days=30))
        assert notification_claim(event_key=EVENT, recipient=ANA) is False


def test_send_once_sends_once_when_called_twice(mailoutbox):
    assert send_once(event_key=EVENT, recipient=ANA, message=_message()) is True
    assert send_once(event_key=EVENT, recipient=ANA, message=_message()) is False

    assert len(mailoutbox) == 1
    assert Notification.objects.get().sent_at is not None


def test_an_smtp_hiccup_then_a_retry_sends_exactly_once(settings, mailoutbox):
    settings.EMAIL_BACKEND = "tests.core.test_notifications.FailsOnce"
    FailsOnce.failed = False

    with pytest.raises(smtplib.SMTPServerDisconnected):
        send_once(event_key=EVENT, recipient=ANA, message=_message())
    assert len(mail.outbox) == 0
    assert send_once(event_key=EVENT, recipient=ANA, message=_message()) is True  # the task's retry
    assert send_once(event_key=EVENT, recipient=ANA, message=_message()) is False  # a redelivery

    assert len(mail.outbox) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_claimers_in_threads_let_exactly_one_send():
    """Eight workers handed the same redelivered task at once: the unique constraint lets one through."""
    barrier = threading.Barrier(8)
    results: list[bool] = []
    lock = threading.Lock()

    def claim() -> None:
        try:
            barrier.wait(timeout=10)
            won = notification_claim(event_key=EVENT, recipient=ANA)
            with lock:
                results.append(won)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == [False] * 7 + [True]
    assert Notification.objects.count() == 1


def test_an_unsubscribe_token_names_the_mailbox_program_and_kind_and_refuses_tampering():
    token = unsubscribe_token(recipient=ANA, program_id=7, kind=PRICE_DROPPED)

    request = unsubscribe_read(token)
    assert request is not None
    assert (request.program_id, request.kind) == (7, PRICE_DROPPED)
    assert ANA not in token  # a digest, not the address, travels in the URL
    assert unsubscribe_read(token[:-2] + ("AA" if token[-2:] != "AA" else "BB")) is None
    assert unsubscribe_read("nonsense") is None
    # Signed with another salt (another feature's token): not an unsubscribe token.
    assert unsubscribe_read(signing.dumps(["x", 7, PRICE_DROPPED])) is None


def test_an_e_mail_is_in_the_language_the_user_chose_with_the_switch_else_the_sites(settings, client):
    from tests.factories import UserFactory

    settings.LANGUAGE_CODE = "en"
    chooser, silent = UserFactory(username="chooser"), UserFactory(username="silent")
    client.force_login(chooser)

    response = client.post("/i18n/setlang/", {"language": "fr", "next": "/"})

    assert response.status_code == 302
    assert recipient_language(chooser) == "fr"  # saved on the user, not only in the browser's cookie
    assert recipient_language(silent) == "en"
    assert recipient_language(None) == "en"
    # A language Parrain does not speak is never saved.
    client.post("/i18n/setlang/", {"language": "tlh", "next": "/"})
    assert recipient_language(chooser) == "fr"
