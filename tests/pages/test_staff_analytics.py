"""The staff analytics page in a real browser: a marketer opens a program's analytics for a period, every
chart is drawn by Chart.js from the page's JSON (no inline script under the CSP), the tables beside them
hold the hand-computed numbers of tests/console/test_analytics.py, a preset link works, and axe-core finds
no serious violation at phone and desktop widths. Screenshotted."""

from __future__ import annotations

import pytest

from tests.console.test_analytics import shop  # noqa: F401 (the fixture: the hand-computed program)
from tests.factories import staff_user
from tests.pages.conftest import assert_accessible, screenshot
from tests.pages.test_audit_review import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHARTS = ("funnel", "daily", "weekly", "pareto", "cohorts", "reach")


def test_a_marketer_reads_the_charts_and_their_tables(live_server, browser, page, shop):  # noqa: F811
    # Given a marketer and the program of the hand-computed figures
    sign_in(browser, live_server, staff_user("marketer", group="marketing"))

    # When they open its analytics for February and March 2026
    page.goto(f"{live_server.url}/staff/p/jam-club/analytics/?start=2026-02-01&end=2026-03-31")
    page.get_by_role("heading", level=1, name="Analytics of Jam Club").wait_for()

    # Then every chart is drawn on its canvas by Chart.js
    page.wait_for_function(
        "ids => ids.every(id => window.Chart && Chart.getChart(document.getElementById('chart-' + id)))",
        arg=list(CHARTS),
    )
    drawn = page.evaluate(
        "ids => ids.map(id => Chart.getChart(document.getElementById('chart-' + id)).data.datasets.length)",
        list(CHARTS),
    )
    assert drawn == [1, 3, 2, 2, 1, 3]
    assert page.evaluate("Chart.getChart(document.getElementById('chart-funnel')).data.datasets[0].data") == [
        19,
        11,
        9,
        3,
    ]

    # And the tables beside them hold the numbers
    funnel = page.get_by_role("table", name="Funnel of the period")
    assert funnel.get_by_role("row", name="Referred signups 11 57.9 %").count() == 1
    assert funnel.get_by_role("row", name="Converted 3 33.3 %").count() == 1
    assert page.get_by_text("The top 20 % (1 of 5 active ambassadors) brought 37.5 % of the qualified").count() == 1
    cohorts = page.get_by_role("table", name="K per monthly cohort of ambassadors")
    assert cohorts.get_by_role("cell", name="1.33").count() == 1
    value = page.get_by_role("table", name="Ambassadors by value brought")
    assert value.get_by_role("row").nth(1).get_by_role("rowheader").inner_text().startswith("Bob")
    reach = page.get_by_role("table", name="The 6 most clicked ambassadors")
    assert reach.get_by_role("row").filter(has_text="Influencer").count() == 1
    assert page.get_by_role("link", name="Download every ambassador's value as CSV").count() == 1
    assert_accessible(page)
    screenshot(page, "staff-analytics")

    # And a preset changes the period (the last 7 days, to 10 April: only a7 signed up, without a click)
    page.get_by_role("link", name="Last 7 days").click()
    page.get_by_role("heading", level=1, name="Analytics of Jam Club").wait_for()
    assert page.get_by_role("textbox", name="From:").input_value() == "2026-04-04"
    funnel = page.get_by_role("table", name="Funnel of the period")
    assert funnel.get_by_role("row", name="Clicks (bots excluded) 0 —").count() == 1
    assert funnel.get_by_role("row", name="Referred signups 1 —").count() == 1


def test_a_bad_period_shows_the_error_accessibly(live_server, browser, page, shop):  # noqa: F811
    sign_in(browser, live_server, staff_user("marketer", group="marketing"))

    page.goto(f"{live_server.url}/staff/p/jam-club/analytics/?start=2026-03-31&end=2026-02-01")

    page.get_by_role("alert").get_by_text("The end comes before the start.").wait_for()
    assert page.locator("canvas").count() == 0
    assert_accessible(page)
