"""Predict, then see, in Chromium: the course walked by "Next" alone, and a prediction that is scored."""

import re

from playwright.sync_api import Page, expect

COURSE = ["Tensors", "Dataset Explorer", "Transforms", "Build Model", "Autograd", "Optimization",
          "Save & Load"]  # fmt: skip


def _title(page: Page, name: str):
    return page.get_by_role("heading", level=1, name=re.compile(f"{re.escape(name)}$"))


def test_the_course_is_walked_from_start_here_by_next_alone(server, page: Page):
    page.goto(server.url)
    page.get_by_role("button", name="Start with Tensors").click()
    expect(_title(page, "Tensors")).to_be_visible(timeout=30_000)
    for following in COURSE[1:]:
        nxt = page.get_by_test_id("stMain").get_by_role("link", name=f"Next: {following}")
        expect(nxt).to_be_attached(timeout=60_000)  # at the page's end, once it has drawn
        nxt.click()
        expect(_title(page, following)).to_be_visible(timeout=60_000)
    last = page.get_by_test_id("stMain").get_by_role("link", name="Next: Train")  # the whole loop, next
    expect(last).to_be_attached(timeout=60_000)


def _idle(page: Page) -> None:
    """Let the page's run (a widget's change) finish: under load it can take seconds."""
    page.wait_for_timeout(500)
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=60_000)


def test_an_autograd_prediction_is_judged_and_counted_in_the_sidebar(server, page: Page):
    page.goto(f"{server.url}/Autograd")
    expect(_title(page, "Autograd")).to_be_visible(timeout=60_000)
    box = page.locator(".st-key-moment_autograd-twice_box")
    expect(box.get_by_text("Predict first.")).to_be_visible(timeout=60_000)
    _idle(page)
    guess = box.get_by_role("radio", name="the same as after one call")  # the usual guess: a wrong one
    box.get_by_text("the same as after one call").click()
    expect(guess).to_be_checked(timeout=15_000)
    _idle(page)
    box.get_by_role("button", name="Commit").click()
    verdict = box.get_by_text(re.compile(r"^Not quite: you said the same as after one call"))
    expect(verdict).to_be_visible(timeout=60_000)
    expect(box.get_by_test_id("stRadioGroup")).to_have_count(0, timeout=60_000)  # answered: the question goes
    expect(box.get_by_test_id("stAlertContentError").get_by_text("twice as large")).to_be_visible()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("0 of 1 right")).to_be_visible(timeout=60_000)
    expect(sidebar.get_by_role("link", name=re.compile("^Missed: "))).to_be_visible()
