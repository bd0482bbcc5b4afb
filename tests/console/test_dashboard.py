"""/dashboard/: the ambassador's link, channels, share buttons, QR code, counts, progress, price ladder,
rewards and referrals, for their eyes only; and the names others see."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from ambassadors.models import Program
from console.dashboard import mask_email
from console.views import SHARED_KEY
from core import clock
from core.actors import Actor
from core.models import AuditEvent
from referrals.models import ReferralLink, Signup
from referrals.services import link_create, signup_record
from rewards.models import RewardTier
from rewards.services import contest_create, contest_freeze, tier_create
from tests.console.conftest import voucher_tier
from tests.factories import ProgramFactory, enroll
from tests.referrals.helpers import browser, visit

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


def signed_in(user: Any) -> Client:
    client = Client(enforce_csrf_checks=False)
    client.force_login(user)
    return client


def section_html(response: Any, slug: str) -> str:
    html = response.content.decode()
    match = re.search(rf'<section class="card program-section" id="program-{slug}".*?</section>', html, re.S)
    assert match, f"no section for {slug}"
    return match.group(0)


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


# --- the masked address ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("ana@example.org", "a•••@example.org"),
        ("a@example.org", "a•••@example.org"),
        ("élodie.martin+news@exämple.fr", "é•••@exämple.fr"),
        ("not-an-address", "•••"),
    ],
)
def test_a_friends_address_is_masked_to_its_first_letter_and_domain(email, masked):
    assert mask_email(email) == masked


# --- access ------------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_log_in(program):
    for url in ("/dashboard/", f"/dashboard/{program.slug}/qr.svg"):
        response = Client().get(url)
        assert (response.status_code, response["Location"]) == (302, f"/accounts/login/?next={url}")


def test_anonymous_posts_change_nothing_and_go_to_log_in(program, ambassador):
    for url, data in (
        (f"/dashboard/{program.slug}/links", {"channel": "x"}),
        (f"/dashboard/{program.slug}/name", {"display_name": "Evil"}),
    ):
        response = Client().post(url, data)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    ambassador.refresh_from_db()
    assert (ambassador.display_name, ReferralLink.objects.count()) == ("Ana", 0)


def test_an_ambassador_never_sees_another_ambassadors_data(screens):
    bob = screens["bob"]

    page = signed_in(bob.user).get("/dashboard/")

    html = page.content.decode()
    assert screens["ana"].code not in html
    assert "summer-club" not in html
    assert "f•••@example.org" in html  # Bob's own friend


def test_the_qr_code_of_someone_elses_program_is_a_404(screens, outsider):
    assert signed_in(screens["bob"].user).get("/dashboard/summer-club/qr.svg").status_code == 404
    assert signed_in(outsider).get("/dashboard/book-launch/qr.svg").status_code == 404


def test_changing_someone_elses_links_or_name_is_a_404(screens):
    bob = signed_in(screens["bob"].user)

    assert bob.post("/dashboard/summer-club/links", {"channel": "spam"}).status_code == 404
    assert bob.post("/dashboard/summer-club/name", {"display_name": "Bob was here"}).status_code == 404
    screens["ana_summer"].refresh_from_db()
    assert screens["ana_summer"].display_name == "Ana in summer"


# --- what the ambassador sees ------------------------------------------------------------------------


def test_the_dashboard_has_one_section_per_program_with_the_link_to_copy(screens):
    ana = screens["ana"]

    page = signed_in(ana.user).get("/dashboard/")

    assert page.status_code == 200
    book, summer = section_html(page, "book-launch"), section_html(page, "summer-club")
    assert f'value="http://testserver/r/{ana.code}" readonly' in book
    assert f'value="http://testserver/r/{screens["ana_summer"].code}" readonly' in summer
    assert 'data-copy-target="link-book-launch"' in book
    assert "/static/console/copy" in page.content.decode()


def test_share_buttons_are_plain_links_with_the_prefilled_message(screens):
    ana = screens["ana"]
    book = section_html(signed_in(ana.user).get("/dashboard/"), "book-launch")
    link = f"http%3A%2F%2Ftestserver%2Fr%2F{ana.code}"

    hrefs = [unescape(h) for h in re.findall(r'href="([^"]+)"', book)]

    assert any(
        h.startswith("mailto:?subject=The%20Book%20Launch&body=Join%20me%20on%20The%20Book%20Launch") for h in hrefs
    )
    assert f"https://wa.me/?text=Join%20me%20on%20The%20Book%20Launch%3A%20{link}" in hrefs
    assert f"https://t.me/share/url?url={link}&text=Join%20me%20on%20The%20Book%20Launch%3A" in hrefs
    assert f"https://twitter.com/intent/tweet?text=Join%20me%20on%20The%20Book%20Launch%3A&url={link}" in hrefs
    assert f"https://www.linkedin.com/sharing/share-offsite/?url={link}" in hrefs
    assert f"https://www.facebook.com/sharer/sharer.php?u={link}" in hrefs
    assert "<script" not in book


def share_hrefs(html: str) -> dict[str, str]:
    """The share buttons' URLs by service, as the browser reads the attribute."""
    hrefs = [unescape(h) for h in re.findall(r'<a class="button secondary" href="([^"]+)"', html)]
    services = {
        "mailto:": "email", "https://wa.me/": "whatsapp", "https://t.me/": "telegram",
        "https://twitter.com/": "x", "https://www.linkedin.com/": "linkedin", "https://www.facebook.com/": "facebook",
    }  # fmt: skip
    return {name: h for h in hrefs for prefix, name in services.items() if h.startswith(prefix)}


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query if not url.startswith("mailto:") else url.partition("?")[2])


def with_share_message(program: Program, message: str) -> None:
    program.share_message = message
    program.save(update_fields=["share_message"])


def test_share_buttons_carry_the_programs_own_message_percent_encoded(screens):
    ana = screens["ana"]
    with_share_message(screens["book"], "Read with me: 20% off!")
    link = f"http://testserver/r/{ana.code}"

    book = section_html(signed_in(ana.user).get("/dashboard/"), "book-launch")
    shared = share_hrefs(book)

    assert set(shared) == {"email", "whatsapp", "telegram", "x", "linkedin", "facebook"}
    assert shared["email"] == (
        "mailto:?subject=The%20Book%20Launch&body=Read%20with%20me%3A%2020%25%20off%21%20http%3A%2F%2Ftestserver%2Fr%2F"
        + ana.code
    )
    assert shared["whatsapp"] == f"https://wa.me/?text=Read%20with%20me%3A%2020%25%20off%21%20{quote(link, safe='')}"
    assert shared["x"] == (
        f"https://twitter.com/intent/tweet?text=Read%20with%20me%3A%2020%25%20off%21&url={quote(link, safe='')}"
    )
    assert query_of(shared["telegram"]) == {"url": [link], "text": ["Read with me: 20% off!"]}
    assert "Join me on" not in " ".join(shared.values())


def test_share_buttons_fall_back_to_the_translated_default_when_the_message_is_empty(screens):
    ana = screens["ana"]
    with_share_message(screens["book"], "")
    link = f"http://testserver/r/{ana.code}"
    client = signed_in(ana.user)

    english = share_hrefs(section_html(client.get("/dashboard/"), "book-launch"))
    french = share_hrefs(section_html(client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE="fr"), "book-launch"))

    assert query_of(english["email"]) == {
        "subject": ["The Book Launch"],
        "body": [f"Join me on The Book Launch: {link}"],
    }
    assert query_of(english["whatsapp"]) == {"text": [f"Join me on The Book Launch: {link}"]}
    assert query_of(english["x"]) == {"text": ["Join me on The Book Launch:"], "url": [link]}
    assert "Join me on" not in french["x"]  # the default speaks the page's language
    assert query_of(french["x"])["url"] == [link]


HOSTILE = 'Say "yes" <script>alert(1)</script> & win=1 \' <b>now</b>'


def test_a_hostile_share_message_stays_encoded_in_its_parameter_and_escaped_in_the_page(screens):
    ana = screens["ana"]
    with_share_message(screens["book"], HOSTILE)
    link = f"http://testserver/r/{ana.code}"

    book = section_html(signed_in(ana.user).get("/dashboard/"), "book-launch")
    shared = share_hrefs(book)

    assert "<script>alert(1)" not in book and "<b>now" not in book
    raw = re.findall(r'<a class="button secondary" href="([^"]+)"', book)
    assert all(not re.search(r"[<>\"' ]", href) for href in raw), raw  # nothing that could leave the attribute
    assert all("&amp;" in href for href in raw if "&" in href)  # the separators are escaped for HTML
    # The message comes back whole from its own parameter: its "&" and "=" added no parameter.
    assert query_of(shared["x"]) == {"text": [HOSTILE], "url": [link]}
    assert query_of(shared["telegram"]) == {"url": [link], "text": [HOSTILE]}
    assert query_of(shared["whatsapp"]) == {"text": [f"{HOSTILE} {link}"]}
    assert query_of(shared["email"]) == {"subject": ["The Book Launch"], "body": [f"{HOSTILE} {link}"]}
    assert "%3Cscript%3Ealert%281%29%3C%2Fscript%3E%20%26%20win%3D1" in shared["x"]


def test_the_share_it_too_page_uses_the_programs_message_too(program):
    with_share_message(program, HOSTILE)
    friend = enroll(program, "zoe@example.org")
    client = Client()
    session = client.session
    session[SHARED_KEY] = {str(program.pk): friend.pk}
    session.save()

    html = client.get(f"/p/{program.slug}/share").content.decode()
    shared = share_hrefs(html)

    assert "<script>alert(1)" not in html
    assert query_of(shared["x"]) == {"text": [HOSTILE], "url": [f"http://testserver/r/{friend.code}"]}
    assert query_of(shared["email"])["body"] == [f"{HOSTILE} http://testserver/r/{friend.code}"]


def test_the_qr_code_is_inline_and_downloadable_by_its_owner(screens):
    ana = screens["ana"]
    client = signed_in(ana.user)

    book = section_html(client.get("/dashboard/"), "book-launch")
    download = client.get("/dashboard/book-launch/qr.svg")

    assert "<svg" in book and 'class="qr' in book
    assert download.status_code == 200
    assert download["Content-Type"] == "image/svg+xml"
    assert "attachment" in download["Content-Disposition"]
    assert download.content.lstrip().startswith(b"<?xml") or b"<svg" in download.content[:200]


def test_counts_per_link_follow_each_signup_to_its_click_and_the_click_to_its_link(program, ambassador):
    newsletter = link_create(ambassador=ambassador, channel="newsletter")
    visit(browser("198.51.100.1"), ambassador.code)
    reader = browser("198.51.100.2")
    _, click_id = visit(reader, newsletter.code)
    visit(browser("198.51.100.3"), newsletter.code)
    Client(HTTP_USER_AGENT="Twitterbot/1.0").get(f"/r/{newsletter.code}")  # a bot: never counted
    signup_record(program=program, email="reader@example.org", cookie_click_id=click_id, actor=SYSTEM)
    signup_record(program=program, email="typed@example.org", referral_code=ambassador.code, actor=SYSTEM)

    book = section_html(signed_in(ambassador.user).get("/dashboard/"), "book-launch")

    rows = {code: text_of(row) for code, row in re.findall(r'<tr data-code="([^"]+)">(.*?)</tr>', book, re.S)}
    # clicks, signups, qualified, purchases
    assert rows[ambassador.code].endswith("1 1 1 0")  # one visit; the typed code counts here
    assert rows[newsletter.code].endswith("2 1 1 0")
    # The link is the signup's own, copied from its click when recorded: counted without the click.
    links = dict(Signup.objects.filter(program=program).values_list("email", "link_id"))
    assert links == {"reader@example.org": newsletter.pk, "typed@example.org": None}


def test_progress_to_the_next_reward_in_words_and_a_bar(program, ambassador):
    voucher_tier(program, "Three friends", "3")
    signup_record(program=program, email="one@example.org", referral_code=ambassador.code, actor=SYSTEM)
    signup_record(program=program, email="two@example.org", referral_code=ambassador.code, actor=SYSTEM)

    book = section_html(signed_in(ambassador.user).get("/dashboard/"), "book-launch")

    assert "1 more qualified friend: 20% voucher" in text_of(book)
    assert 'aria-valuenow="66"' in book


def test_progress_speaks_in_the_plural(program, ambassador):
    voucher_tier(program, "Three friends", "3")

    book = section_html(signed_in(ambassador.user).get("/dashboard/"), "book-launch")

    assert "3 more qualified friends: 20% voucher" in text_of(book)


def test_rewards_show_their_voucher_codes_and_state(screens):
    ana = screens["ana"]
    grant = ana.grants.get()

    book = text_of(section_html(signed_in(ana.user).get("/dashboard/"), "book-launch"))

    assert f"Two friends {grant.voucher_code} Unlocked" in book


def test_referrals_are_masked_with_the_reason_a_friend_did_not_count(screens):
    ana = screens["ana"]
    program = screens["book"]
    signup_record(program=program, email="ana@example.com", referral_code=ana.code, actor=SYSTEM)

    page = section_html(signed_in(ana.user).get("/dashboard/"), "book-launch")
    book = text_of(page)

    assert "friend10@example.org" not in page
    assert "f•••@example.org" in book and "Counts" in book
    assert "h•••@mailinator.com" in book and "Held for review: a disposable e-mail address" in book
    assert "a•••@example.com" in book and "Does not count: your own address (self-referral)" in book


def test_the_collective_ladder_shows_the_price_the_next_drop_and_the_milestones(
    program, ambassador, django_capture_on_commit_callbacks
):
    tier_create(
        program=program, actor=SYSTEM, name="Price drop", kind=RewardTier.Kind.COLLECTIVE, step=2,
        drop_type=RewardTier.DropType.AMOUNT, drop_value=Decimal("1"),
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            signup_record(program=program, email=f"f{n}@example.org", referral_code=ambassador.code, actor=SYSTEM)

    book = text_of(section_html(signed_in(ambassador.user).get("/dashboard/"), "book-launch"))

    assert "Price now: €19.00" in book
    assert "1 more subscriber and the price drops for everyone." in book
    assert re.search(r"\d{2}/\d{2}/\d{4}: \d+ subscribers, the price dropped to €19.00", book)


# --- contests -----------------------------------------------------------------------------------------


def running_contest(program: Program, name: str = "March prize", **fields: Any) -> Any:
    """A contest that began yesterday (the scene's signups count) and ends in six days and an hour."""
    return contest_create(
        program=program, actor=SYSTEM, name=name, prize_text="A signed first edition",
        starts_at=clock.now() - timedelta(days=1), ends_at=clock.now() + timedelta(days=6, hours=1), **fields,
    )  # fmt: skip


def contest_html(section: str, contest_id: int) -> str:
    match = re.search(
        rf'<section class="card contest" aria-labelledby="contest-{contest_id}-title">.*?</section>', section, re.S
    )
    assert match, f"no contest {contest_id} in the section"
    return match.group(0)


def ranking_rows(contest: str) -> list[tuple[str, str]]:
    """(the row's class attribute, its words) for each line of the ranking."""
    return [
        (cls or "", text_of(row))
        for cls, row in re.findall(r'<tr(?: class="([^"]*)")?>(.*?)</tr>', contest.split("<tbody>")[1], re.S)
    ]


def test_a_running_contest_shows_its_ranking_and_time_left_with_the_ambassadors_own_line(screens):
    march = running_contest(screens["book"])

    book = section_html(signed_in(screens["ana"].user).get("/dashboard/"), "book-launch")
    contest = contest_html(book, march.pk)
    words = text_of(contest)

    assert f'<h3 id="contest-{march.pk}-title">March prize</h3>' in contest  # under the program's <h2>
    assert "Prize A signed first edition" in words
    assert "Time left: 6 days" in words  # text_of folds the no-break space
    # Ana first with her two qualified friends (the held one does not count), Bob second.
    assert ranking_rows(contest) == [("contest-winner contest-mine", "1 Ana (you) 2"), ("", "2 Bob 1")]
    assert "You are number 1." in words


def test_each_ambassador_sees_their_own_line_highlighted_and_only_their_programs_contests(screens):
    march = running_contest(screens["book"])
    summer = running_contest(screens["summer"], "Summer prize")

    page = signed_in(screens["bob"].user).get("/dashboard/")
    contest = contest_html(section_html(page, "book-launch"), march.pk)

    assert ranking_rows(contest) == [("contest-winner ", "1 Ana 2"), ("contest-mine", "2 Bob (you) 1")]
    assert "You are number 2." in text_of(contest)
    assert f"contest-{summer.pk}-title" not in page.content.decode()


def test_an_ambassador_not_in_the_ranking_is_told_so(screens, django_capture_on_commit_callbacks):
    march = running_contest(screens["book"])
    carl = enroll(screens["book"], "carl@example.com", display_name="Carl")

    contest = contest_html(section_html(signed_in(carl.user).get("/dashboard/"), "book-launch"), march.pk)

    assert "contest-mine" not in contest and "(you)" not in contest
    assert "You are not in this ranking yet." in text_of(contest)


def test_after_the_freeze_the_winners_stay_with_the_ambassadors_own_line(screens):
    march = contest_create(
        program=screens["book"], actor=SYSTEM, name="March prize", prize_text="A signed first edition",
        starts_at=clock.now() - timedelta(days=1), ends_at=clock.now() + timedelta(hours=1), winners_count=2,
    )  # fmt: skip

    with time_machine.travel(clock.now() + timedelta(hours=2), tick=False):
        contest_freeze(contest_id=march.pk)
        page = signed_in(screens["bob"].user).get("/dashboard/")
    contest = contest_html(section_html(page, "book-launch"), march.pk)

    assert "The ranking is final." in text_of(contest) and "<caption>Winners</caption>" in contest
    assert ranking_rows(contest) == [("contest-winner ", "1 Ana 2"), ("contest-winner contest-mine", "2 Bob (you) 1")]
    assert "You are number 2." in text_of(contest)


def test_a_contest_that_has_not_started_is_not_shown(screens):
    later = contest_create(
        program=screens["book"], actor=SYSTEM, name="Next month", prize_text="A mug",
        starts_at=clock.now() + timedelta(days=3), ends_at=clock.now() + timedelta(days=30),
    )  # fmt: skip

    html = signed_in(screens["ana"].user).get("/dashboard/").content.decode()

    assert f"contest-{later.pk}-title" not in html


def test_names_in_a_contest_ranking_show_as_text(screens):
    ana = screens["ana"]
    signed_in(ana.user).post("/dashboard/book-launch/name", {"display_name": "<script>alert(1)</script>"})
    march = running_contest(screens["book"])

    contest = contest_html(section_html(signed_in(ana.user).get("/dashboard/"), "book-launch"), march.pk)

    assert "<script>alert(1)</script>" not in contest
    assert "&lt;script&gt;alert(1)&lt;/script&gt; <strong" in contest


def test_without_an_ambassadorship_the_dashboard_offers_programs_to_join(outsider):
    ProgramFactory(slug="open-one", name="Open One")
    ProgramFactory(slug="closed-one", name="Closed One", status="closed")

    page = signed_in(outsider).get("/dashboard/")

    html = page.content.decode()
    assert page.status_code == 200
    assert 'href="/p/open-one/join"' in html
    assert "closed-one" not in html


# --- acting on the dashboard -------------------------------------------------------------------------


def test_an_ambassador_names_and_creates_a_channel_link(program, ambassador):
    client = signed_in(ambassador.user)

    response = client.post(f"/dashboard/{program.slug}/links", {"channel": "Instagram"})

    assert (response.status_code, response["Location"]) == (302, f"/dashboard/#program-{program.slug}")
    link = ReferralLink.objects.get(ambassador=ambassador)
    assert link.code == f"{ambassador.code}-INSTAGRAM"
    assert f'data-code="{link.code}"' in client.get("/dashboard/").content.decode()


def test_a_bad_channel_name_is_shown_by_the_form(program, ambassador):
    response = signed_in(ambassador.user).post(f"/dashboard/{program.slug}/links", {"channel": "!!!"})

    assert response.status_code == 200
    assert "A channel name has letters or digits." in response.content.decode()
    assert not ReferralLink.objects.exists()


def test_the_display_name_is_what_others_see_and_is_audited(program, ambassador):
    response = signed_in(ambassador.user).post(f"/dashboard/{program.slug}/name", {"display_name": "Ana B."})

    assert response.status_code == 302
    ambassador.refresh_from_db()
    assert ambassador.display_name == "Ana B."
    assert AuditEvent.objects.filter(action="ambassador.updated", object_id=str(ambassador.pk)).exists()


def test_an_empty_display_name_is_anonymous(program, ambassador):
    client = signed_in(ambassador.user)
    client.post(f"/dashboard/{program.slug}/name", {"display_name": ""})

    book = text_of(section_html(client.get("/dashboard/"), "book-launch"))

    assert "On the leaderboard you are anonymous." in book


def test_a_display_name_with_markup_shows_as_text(program, ambassador):
    client = signed_in(ambassador.user)
    client.post(f"/dashboard/{program.slug}/name", {"display_name": "<script>alert(1)</script>"})

    html = client.get("/dashboard/").content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_dashboard_renders_in_french(screens):
    client = signed_in(screens["ana"].user)

    page = client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE="fr")

    assert page.status_code == 200
    assert '<html lang="fr">' in page.content.decode()


# --- a fixed number of queries -----------------------------------------------------------------------


def _dashboard_queries(user: Any) -> int:
    client = signed_in(user)
    client.get("/dashboard/")  # warm: the session and the first request's one-off reads
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/dashboard/").status_code == 200
    return len(queries)


def _ambassador_with(n: int, slug: str, django_capture_on_commit_callbacks: Any) -> Any:
    program = ProgramFactory(slug=slug)
    tier_create(
        program=program, actor=SYSTEM, name="Price drop", kind=RewardTier.Kind.COLLECTIVE, step=2,
        drop_type=RewardTier.DropType.AMOUNT, drop_value=Decimal("1"),
    )  # fmt: skip
    for k in range(n):
        voucher_tier(program, f"{k + 1} friends", str(k + 1))
    ambassador = enroll(program, f"amb-{slug}@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        for k in range(n):
            link = link_create(ambassador=ambassador, channel=f"channel{k}")
            _, click_id = visit(browser(f"198.51.100.{k + 1}"), link.code)
            signup_record(program=program, email=f"f{k}-{slug}@example.org", cookie_click_id=click_id, actor=SYSTEM)
    assert ambassador.grants.count() == n
    return ambassador


@pytest.mark.parametrize("contest", [False, True], ids=["no-contest", "a-running-contest"])
def test_the_dashboard_costs_the_same_queries_with_one_or_many_links_referrals_and_rewards(
    django_capture_on_commit_callbacks, contest
):
    one = _ambassador_with(1, "one", django_capture_on_commit_callbacks)
    many = _ambassador_with(6, "many", django_capture_on_commit_callbacks)
    if contest:  # its ranking lists everybody who scored: 1 and 6 qualified friends
        for ambassador in (one, many):
            running_contest(ambassador.program)

    # 2 the session and the user; 1 the user's groups (the header's console links, console/context.py);
    # 10 dashboard_sections (ambassadorships, channel links, the days the click retention purged, clicks,
    # signups and purchases per link, grants, tiers, the recent referrals, their total); 5 the program's
    # price ladder; 1 the contests shown of all
    # the person's programs at once (constant: asked even when there is none), and 1 more per contest
    # shown, its ranking (however many ambassadors, signups or purchases it ranks).
    contests = 1 + (1 if contest else 0)
    assert _dashboard_queries(one.user) == _dashboard_queries(many.user) == 2 + 1 + 10 + 5 + contests
