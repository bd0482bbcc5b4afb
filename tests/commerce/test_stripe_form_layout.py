"""The Stripe staff form in a real browser: its checkboxes sit before their labels on one line, as on every
other staff form, the help text of "promotion codes" under them rather than between; and the page passes
axe-core."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import staff_user
from tests.pages.conftest import assert_accessible, browser, page, screenshot  # noqa: F401 - the fixtures of the browser tests
from tests.pages.test_staff_console import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _box(on: Any, selector: str) -> dict[str, float]:
    box = on.locator(selector).bounding_box()
    assert box is not None, selector
    return box


def _same_line(a: dict[str, float], b: dict[str, float]) -> bool:
    """Their vertical centres are within a few pixels."""
    return abs((a["y"] + a["height"] / 2) - (b["y"] + b["height"] / 2)) < 6


@pytest.mark.parametrize("width", [1280, 390])
def test_the_promotion_codes_checkbox_sits_with_its_label_and_its_help_below(live_server, browser, page, width):  # noqa: F811
    from tests.factories import ProgramFactory

    program = ProgramFactory(slug="launch", name="Book Launch")
    sign_in(browser, live_server, staff_user("marketer", group="marketing"))
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/staff/p/{program.slug}/stripe/")
    page.get_by_role("heading", level=1).wait_for()

    box = _box(page, "#id_promotion_codes_enabled")
    label = _box(page, "label[for=id_promotion_codes_enabled]")
    helptext = _box(page, "#id_promotion_codes_enabled_helptext")
    assert _same_line(box, label) and box["x"] < label["x"], (box, label)
    assert helptext["y"] >= label["y"] + label["height"] - 1, (helptext, label)
    # Like the checkbox without help text on the same form.
    other, other_label = _box(page, "#id_remove_api_key"), _box(page, "label[for=id_remove_api_key]")
    assert _same_line(other, other_label) and other["x"] < other_label["x"]
    assert abs(other["x"] - box["x"]) < 2  # one column of boxes
    if width == 1280:
        assert_accessible(page)
        screenshot(page, "staff-stripe-form")
