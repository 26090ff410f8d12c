"""Every page in Chromium over a run store that holds damaged runs (numbers of thousands of digits, a
config of 10**400, Markdown in a status, a folder named as code): no page goes blank or shows a traceback,
the good run is still offered, and what the files hold is shown as text, never as a link."""

import json
import re
import shutil

import pytest
from playwright.sync_api import Page, expect

from core import runs
from core.runs import store as runstore
from core.training.config import TrainConfig
from tests.e2e.conftest import serve, shot
from ui.nav import PAGES

pytestmark = pytest.mark.e2e
GOOD = "20260101-000000-good"
DAMAGE = {
    "20260102-000000-digs": ("status.json", b'{"status": "finished", "epoch": 1' + b"0" * 5000 + b"}"),
    "20260102-000000-huge": ("config.json", b'{"epochs": 1' + b"0" * 400 + b"}"),
    "20260102-000000-link": ("status.json", b'{"status": "[Open the run](http://attacker.test/)"}'),
    "20260102-000000-mets": ("metrics.jsonl", b'{"kind": "batch", "step": 1' + b"0" * 5000 + b"}\n"),
}
PLANTED = 'z"""\n__import__("os").system("id > PWNED")\n"""'


@pytest.fixture(scope="module")
def damaged_server(tmp_path_factory, real_data):
    store = tmp_path_factory.mktemp("damaged-runs")
    config = TrainConfig(epochs=1, limit_batches=2, device="cpu")
    good = runs.create_run(config, store / GOOD)
    assert runs.train_run(good) == "finished"
    for run_id, (name, content) in DAMAGE.items():
        directory = runs.create_run(config, store / run_id)
        runstore._write_status(directory, status="finished", epoch=1, step=2)
        (directory / name).write_bytes(content)
    shutil.copytree(good, store / PLANTED)  # a folder whose name is no run id
    (store / "notes.json").write_text(json.dumps({"not": "a run"}))
    yield from serve(tmp_path_factory, store, "damaged")


def test_every_page_works_over_a_damaged_store_and_shows_file_text_as_text(damaged_server, page: Page):
    page.goto(damaged_server.url)
    expect(page.get_by_role("heading", name="FashionMNIST Studio")).to_be_visible(timeout=30_000)
    sidebar = page.get_by_test_id("stSidebar")
    for info in PAGES.values():
        sidebar.get_by_role("link", name=info.title, exact=True).click()
        expect(page.get_by_role("heading", name=info.title).first).to_be_visible(timeout=30_000)
        page.wait_for_timeout(1_000)
        expect(page.get_by_test_id("stException")).to_have_count(0)
        expect(sidebar.get_by_text("Damaged run")).to_be_visible()
        expect(page.locator("a[href*='attacker.test']")).to_have_count(0)
        expect(page.get_by_text("PWNED")).to_have_count(0)
        if info.title == "Predict":  # the good run's model is still offered
            model = page.get_by_role("combobox", name="Model", exact=True)
            expect(model).to_have_value(re.compile(f"run {GOOD}"), timeout=20_000)
        shot(page, f"damaged-store-{info.title.lower().replace(' ', '-')}")
    page.get_by_role("link", name="Train", exact=True).first.click()
    expect(page.get_by_text("'[Open the run](http:").first).to_be_visible(timeout=20_000)  # as text
    assert not (damaged_server.runs_dir.parent / "PWNED").exists()
