"""Predict in Chromium: a dropped photo survives a page switch, a photo on a banded background is
predicted as its clean image, and the page fits a phone's width."""

import re

import pytest
from playwright.sync_api import Page, expect

from core import runs
from core.data.fashion import CLASSES, load_split
from core.model.checkpoint import load_checkpoint
from core.model.predict import predict
from tests.e2e.conftest import drop, shot
from tests.photos import photo

pytestmark = pytest.mark.e2e
PHONE = {"width": 412, "height": 915}
TOP1 = re.compile(r"^Top-1: .+ · \d+\.\d%$")
WIDTHS_JS = "() => ({page: document.documentElement.scrollWidth, window: window.innerWidth})"


def _open_predict(page: Page, url: str) -> None:
    page.goto(f"{url}/Predict")
    expect(page.get_by_role("heading", level=1, name="Predict")).to_be_visible(timeout=30_000)


def _sidebar_link(page: Page, title: str):
    return page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True)


def test_a_dropped_photo_is_still_there_after_another_page(server, trained_run, page: Page, tmp_path):
    images, _ = load_split("test")
    sample = tmp_path / "boot.png"
    sample.write_bytes(photo(images[0], "band", seed=1))  # test image 0 is an ankle boot
    _open_predict(page, server.url)
    drop(page, "Drop images of clothing here", sample)
    top1 = page.get_by_text(TOP1)
    expect(top1).to_be_visible(timeout=30_000)
    answer = top1.inner_text()
    _sidebar_link(page, "Tensors").click()  # within the app: the same browser session
    expect(page.get_by_role("heading", level=1, name="Tensors")).to_be_visible(timeout=30_000)
    _sidebar_link(page, "Predict").click()
    expect(page.get_by_role("heading", level=1, name="Predict")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("File: boot.png")).to_be_visible(timeout=30_000)
    expect(page.get_by_text(TOP1)).to_have_text(answer, timeout=30_000)
    expect(page.get_by_text("1 photo kept from earlier in this session")).to_be_visible()
    shot(page, "predict-kept-after-a-page-switch")
    page.get_by_role("button", name="Clear photos").click()
    expect(page.get_by_text("File: boot.png")).to_have_count(0, timeout=30_000)


def test_a_photo_on_a_banded_background_is_predicted_as_its_clean_image(
    server, trained_run, page: Page, tmp_path
):
    images, labels = load_split("test")
    index = int((labels == CLASSES.index("Trouser")).nonzero()[0])
    path = tmp_path / "trousers.jpg"
    path.write_bytes(photo(images[index], "band", seed=0))
    model = load_checkpoint(trained_run / runs.CHECKPOINT).model
    clean = predict(model, images[index].float().div(255), 1)[0]
    _open_predict(page, server.url)
    drop(page, "Drop images of clothing here", path)
    expect(page.get_by_text(TOP1)).to_have_text(re.compile(rf"^Top-1: {clean.label} · "), timeout=30_000)
    expect(page.get_by_text("The background is uneven")).to_have_count(0)
    shot(page, "predict-banded-photo")


def test_predict_fits_a_phone(server, trained_run, browser, tmp_path):
    images, _ = load_split("test")
    edge = tmp_path / "edge.jpg"  # the item reaches the bottom of a banded photo: the warning shows
    edge.write_bytes(photo(images[2], "band", seed=3, at=(0.5, 1.0)))
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        _open_predict(page, server.url)
        drop(page, "Drop images of clothing here", edge)
        expect(page.get_by_text(TOP1)).to_be_visible(timeout=30_000)
        expect(page.get_by_text("The background is uneven")).to_be_visible()
        for tab in ("Your images", "Draw", "Camera", "Test-set samples"):
            page.get_by_role("tab", name=tab).click()
            page.wait_for_timeout(1_500)
            widths = page.evaluate(WIDTHS_JS)
            assert widths["page"] <= widths["window"], f"{tab}: {widths}"
        page.get_by_role("tab", name="Your images").click()
        shot(page, "predict-phone")
    finally:
        context.close()
