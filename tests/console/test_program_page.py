"""`/p/<slug>/`: what an ambassador gets in words, the live price and its progress, the leaderboard when the
program shows it, and the way to join for each kind of visitor, at a query count that does not grow."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from ambassadors.models import Program
from ambassadors.services import ambassador_update
from core.actors import Actor
from referrals.services import signup_record
from rewards.models import RewardTier
from rewards.services import tier_create
from tests.factories import ProgramFactory, UserFactory, enroll

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


def ladder(program: Program, step: int = 5) -> None:
    tier_create(
        program=program, actor=SYSTEM, name="Price drop", kind=RewardTier.Kind.COLLECTIVE, step=step,
        drop_type=RewardTier.DropType.AMOUNT, drop_value=Decimal("1.00"),
    )  # fmt: skip


def voucher(program: Program, threshold: int, percent: int = 20, **extra) -> None:
    tier_create(
        program=program, actor=SYSTEM, name=f"{threshold} friends", kind=RewardTier.Kind.INDIVIDUAL,
        metric=RewardTier.Metric.QUALIFIED_SIGNUPS, threshold=Decimal(threshold),
        reward_type=RewardTier.RewardType.PERCENT_VOUCHER, reward_value=Decimal(percent), **extra,
    )  # fmt: skip


def text_of(html: str) -> str:
    """The page's words, tags dropped and spaces collapsed, as a reader hears them."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def subscribers(program: Program, n: int, *, referral_code: str | None = None, first: int = 0) -> None:
    for i in range(first, first + n):
        signup_record(program=program, email=f"reader{i}@example.org", referral_code=referral_code, actor=SYSTEM)


def test_the_page_says_what_an_ambassador_and_their_friend_get(program):
    voucher(program, 3)
    voucher(program, 1, percent=5, referee_reward_type=RewardTier.RewardType.PERCENT_VOUCHER,
            referee_reward_value=Decimal("10"))  # fmt: skip
    tier_create(
        program=program, actor=SYSTEM, name="Big spender", kind=RewardTier.Kind.INDIVIDUAL,
        metric=RewardTier.Metric.CONVERTED_AMOUNT, threshold=Decimal("50"),
        reward_type=RewardTier.RewardType.CUSTOM, reward_text="A signed copy",
    )  # fmt: skip
    voucher(program, 9, percent=50, is_active=False)

    words = text_of(Client().get(f"/p/{program.slug}/").content.decode())

    assert "1 qualified friend : 5% voucher . Your friend gets: 10% voucher" in words
    assert "3 qualified friends : 20% voucher" in words
    assert "€50.00 spent by your friends : A signed copy" in words
    assert "50% voucher" not in words  # an inactive tier is not offered


def test_the_price_shows_with_an_accessible_progress_bar_to_the_next_drop(program, django_capture_on_commit_callbacks):
    ladder(program, step=5)
    with django_capture_on_commit_callbacks(execute=True):  # milestones are reached after commit
        subscribers(program, 7)

    html = Client().get(f"/p/{program.slug}/").content.decode()

    assert '<strong id="current-price">€19.00</strong>' in html
    assert '<progress id="next-drop-progress" max="5" value="2">2 / 5</progress>' in html
    assert '<label for="next-drop-progress">Next drop: 2 of 5 subscribers</label>' in html
    assert "3 more and the price drops for everyone." in html


def test_a_new_subscriber_shows_on_the_page_at_once(program, django_capture_on_commit_callbacks):
    ladder(program, step=2)
    client = Client()
    assert '<strong id="current-price">€20.00</strong>' in client.get(f"/p/{program.slug}/").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        subscribers(program, 2)

    assert '<strong id="current-price">€19.00</strong>' in client.get(f"/p/{program.slug}/").content.decode()


def test_what_the_page_keeps_in_cache_is_never_shown_older_than_5_seconds(program, time_machine):
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    time_machine.move_to(start, tick=False)
    program.leaderboard_public = True
    program.save(update_fields=["leaderboard_public"])
    ana = enroll(program, "ana@example.com", display_name="Ana")
    subscribers(program, 1, referral_code=ana.code)
    client = Client()
    assert "Ana: 1" in text_of(client.get(f"/p/{program.slug}/").content.decode())
    ambassador_update(ambassador=ana, actor=SYSTEM, display_name="Ana B")  # moves no counter

    time_machine.move_to(start + timedelta(seconds=4.9), tick=False)
    assert "Ana: 1" in text_of(client.get(f"/p/{program.slug}/").content.decode())  # cached, 4.9 s old
    time_machine.move_to(start + timedelta(seconds=5), tick=False)
    assert "Ana B: 1" in text_of(client.get(f"/p/{program.slug}/").content.decode())


def test_prices_follow_the_language_of_the_page(program):
    ladder(program)

    html = Client(HTTP_ACCEPT_LANGUAGE="fr").get(f"/p/{program.slug}/").content.decode()

    assert '<html lang="fr">' in html
    assert '<strong id="current-price">20,00\xa0€</strong>' in html


def test_the_leaderboard_shows_only_when_the_program_makes_it_public(program):
    ana = enroll(program, "ana@example.com", display_name="Ana")
    enroll(program, "shy@example.com", display_name="")
    subscribers(program, 2, referral_code=ana.code)
    client = Client()
    assert "Top ambassadors" not in client.get(f"/p/{program.slug}/").content.decode()

    program.leaderboard_public = True
    program.save(update_fields=["leaderboard_public"])
    words = text_of(client.get(f"/p/{program.slug}/").content.decode())

    assert "Top ambassadors Ana: 2 qualified friends" in words
    assert "shy@" not in words and "ana@" not in words  # never an e-mail, and nobody without a friend


def test_an_anonymous_visitor_is_led_to_log_in_then_to_join(program):
    html = Client().get(f"/p/{program.slug}/").content.decode()

    assert '<a class="button" id="join-button" href="/accounts/login/?next=%2Fp%2Fbook-launch%2Fjoin">' in html


def test_a_signed_in_visitor_joins_with_a_post_form(program):
    client = Client()
    client.force_login(UserFactory(username="visitor"))

    html = client.get(f"/p/{program.slug}/").content.decode()

    form = re.search(r'<form method="post" action="/p/book-launch/join">(.*?)</form>', html, re.S)
    assert form and 'name="csrfmiddlewaretoken"' in form.group(1) and 'id="join-button"' in form.group(1)


def test_an_ambassador_is_led_to_their_dashboard_instead(program, ambassador):
    client = Client()
    client.force_login(ambassador.user)

    html = client.get(f"/p/{program.slug}/").content.decode()

    assert 'id="dashboard-link" href="/dashboard/"' in html
    assert 'id="join-button"' not in html


def test_a_running_contest_shows_with_its_prize(program, ambassador):
    from core import clock
    from rewards.services import contest_create

    contest_create(
        program=program, actor=SYSTEM, name="March prize", prize_text="A signed first edition",
        starts_at=clock.now(), ends_at=clock.now() + timedelta(days=7),
    )  # fmt: skip
    subscribers(program, 1, referral_code=ambassador.code)

    words = text_of(Client().get(f"/p/{program.slug}/").content.decode())

    assert "March prize Prize A signed first edition" in words
    assert "Ana 1" in words


def test_a_referral_on_the_page_is_carried_to_the_hosted_form(program):
    html = Client().get(f"/p/{program.slug}/?ref=ANA234&click_id=abc").content.decode()

    assert 'id="subscribe-link" href="/p/book-launch/subscribe?ref=ANA234&amp;click_id=abc"' in html


@pytest.mark.parametrize("status", [None, Program.Status.CLOSED])
def test_an_unknown_or_closed_program_is_404(program, status):
    if status:
        program.status = status
        program.save(update_fields=["status"])
    slug = program.slug if status else "nope"

    assert Client().get(f"/p/{slug}/").status_code == 404


def test_the_page_has_one_h1_and_no_inline_script_or_style(program):
    ladder(program)
    voucher(program, 3)

    html = Client().get(f"/p/{program.slug}/").content.decode()

    assert html.count("<h1") == 1
    assert not re.search(r"\sstyle=|\son[a-z]+=|<script>", html)


def _page_queries(client: Client, slug: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/p/{slug}/").status_code == 200
    return len(queries)


def scene(slug: str, *, tiers: int, leaders: int) -> Program:
    program = ProgramFactory(slug=slug, leaderboard_public=True)
    ladder(program)
    for n in range(1, tiers + 1):
        voucher(program, n, referee_reward_type=RewardTier.RewardType.PERCENT_VOUCHER,
                referee_reward_value=Decimal("5"))  # fmt: skip
    for n in range(leaders):
        ambassador = enroll(program, f"amb{n}@example.com", display_name=f"Amb {n}")
        subscribers(program, 1, referral_code=ambassador.code, first=100 * n)
    return program


@pytest.mark.parametrize("signed_in", [False, True])
def test_the_query_count_is_the_same_with_few_or_many_tiers_and_leaders(db, signed_in):
    few, many = scene("few", tiers=1, leaders=1), scene("many", tiers=8, leaders=12)
    client = Client()
    if signed_in:
        client.force_login(UserFactory(username="visitor"))
    # The session, the user, their ambassadorship, and their groups (the header's console links, console/context.py).
    user = 4 if signed_in else 0

    computed = [_page_queries(client, p.slug) for p in (few, many)]
    cached = [_page_queries(client, p.slug) for p in (few, many)]

    # The program, its counters, the price (3), the tiers, the leaders, and the contests (none here).
    assert computed == [8 + user, 8 + user]
    assert cached == [3 + user, 3 + user]  # the program, its counters (is the copy current?), the contests
