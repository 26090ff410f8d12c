"""Journeys a newcomer takes, in a real browser against a real server."""

import contextlib
import json
import re
import time

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from core import runs
from core.runs import spare
from tests.e2e.conftest import ARTIFACTS, drop, live_chart, serve, shot, start_run, wait_in_place, wait_points

pytestmark = pytest.mark.e2e
TIMINGS: dict[str, float] = {}
CLASS_CAPTION = re.compile(r"^#\d+ · [A-Z]")  # "#index · <class>": the images before the pipeline


def _record(name: str, seconds: float) -> None:
    TIMINGS[name] = round(seconds, 3)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "timings.json").write_text(json.dumps(TIMINGS, indent=2))


def test_a_page_opened_by_its_url_on_a_fresh_server_runs_inside_the_app(server, page: Page):
    """The first visit of a new server is a bookmark to a page, not the home page (see ui.nav)."""
    page.goto(f"{server.url}/Transforms")
    expect(page.get_by_role("heading", name="Transforms")).to_be_visible(timeout=20_000)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_role("link", name="Home")).to_be_visible()
    expect(sidebar.get_by_text("FashionMNIST ready")).to_be_visible()
    expect(sidebar.get_by_role("link", name="app", exact=True)).to_have_count(0)


def test_home_shows_device_and_dataset(server, page: Page):
    start = time.monotonic()
    page.goto(server.url)
    expect(page.get_by_role("heading", name="FashionMNIST Studio")).to_be_visible(timeout=15_000)
    _record("home_first_content_s", time.monotonic() - start)
    expect(page.get_by_text("FashionMNIST is ready")).to_be_visible()
    expect(page.get_by_text("CPU (").first).to_be_visible()
    shot(page, "01-home")


def _grid(page: Page) -> list[str]:
    return page.get_by_role("button", name=CLASS_CAPTION).all_inner_texts()  # the label under each image


def _grid_captions(page: Page, count: int = 9) -> list[str]:
    expect(page.get_by_role("button", name=CLASS_CAPTION)).to_have_count(count, timeout=20_000)
    return _grid(page)


def test_newcomer_browses_the_dataset_and_shuffles(server, page: Page):
    page.goto(server.url)
    expect(page.get_by_role("heading", name="FashionMNIST Studio")).to_be_visible(timeout=15_000)
    start = time.monotonic()
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Dataset Explorer").click()
    expect(page.get_by_role("heading", name="Dataset Explorer")).to_be_visible(timeout=10_000)
    _record("switch_to_explorer_s", time.monotonic() - start)
    first = _grid_captions(page)
    assert len(first) == 9, first
    assert all(caption.startswith("#") for caption in first)
    shot(page, "02-explorer")
    page.get_by_role("button", name="Shuffle", exact=True).click()
    assert _settled(lambda: _grid(page), lambda now: len(now) == 9 and now != first), "no new grid"


def _idle(page: Page) -> None:
    """Wait until Streamlit has finished rerunning the script (its status widget is gone)."""
    with contextlib.suppress(PlaywrightTimeout):
        page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=15_000)


def _add_transform(page: Page, name: str) -> None:
    """Pick `name` in "Add a transform" and press Add; retried if a rerun closes the list under us."""
    for _ in range(3):
        _idle(page)
        # By its key; .last because a rerun that moves the widget briefly leaves the old copy on screen.
        box = page.locator(".st-key-transforms_add").get_by_test_id("stSelectbox").last
        box.click()
        box.locator("input").fill(name)  # the option list is virtualised: filter it down first
        try:
            page.get_by_role("option", name=name, exact=True).click(timeout=5_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    else:
        pytest.fail(f"could not pick {name} in the transform list")
    page.locator(".st-key-transforms_add_button").get_by_role("button").last.click()
    _idle(page)


def _image_sources(page: Page, caption_part: str | re.Pattern) -> list[str]:
    images = page.get_by_test_id("stImage").filter(has_text=caption_part)
    expect(images.first).to_be_visible(timeout=20_000)
    return [img.get_attribute("src") for img in images.locator("img").all()]


def _settled(read, ok, timeout: float = 20.0) -> bool:
    """Poll `read()` until `ok` holds on two reads in a row (the page has finished redrawing)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        now = read()
        if ok(now) and now == last:
            return True
        last = now
        time.sleep(0.5)
    return False


def test_transforms_rotation_and_flip_change_the_after_images(server, page: Page):
    page.goto(f"{server.url}/Transforms")
    expect(page.get_by_role("heading", name="Transforms")).to_be_visible(timeout=15_000)
    _image_sources(page, CLASS_CAPTION)  # wait for the first images
    before_ok = _settled(lambda: _image_sources(page, CLASS_CAPTION), lambda now: len(now) == 2)
    after_ok = _settled(lambda: _image_sources(page, "tensor"), lambda now: len(now) == 2)
    assert before_ok and after_ok, "the two samples and their outputs did not appear"
    before, after = _image_sources(page, CLASS_CAPTION), _image_sources(page, "tensor")
    _add_transform(page, "RandomRotation")
    expect(page.get_by_text("RandomRotation").first).to_be_visible()
    _add_transform(page, "RandomHorizontalFlip")
    expect(page.get_by_text("RandomHorizontalFlip").first).to_be_visible()
    changed = _settled(
        lambda: _image_sources(page, "tensor"), lambda now: len(now) == len(after) and now != after
    )
    assert changed, "the images after the pipeline did not change"
    assert _image_sources(page, CLASS_CAPTION) == before
    shot(page, "03-transforms")


def test_predict_a_dropped_png_then_a_fake_one(server, trained_run, page: Page, tmp_path):
    from PIL import Image

    from core.data.fashion import load_split

    images, _ = load_split("test")
    sample = tmp_path / "boot.png"
    Image.fromarray(images[0].numpy()).save(sample)  # test image 0 is an ankle boot
    page.goto(f"{server.url}/Predict")
    expect(page.get_by_role("heading", name="Predict")).to_be_visible(timeout=20_000)
    drop(page, "Drop images of clothing here", sample)
    top1 = page.get_by_text(re.compile(r"^Top-1: .+ · \d+\.\d%$"))
    expect(top1).to_be_visible(timeout=20_000)
    expect(page.get_by_text("File: boot.png")).to_be_visible()
    expect(page.get_by_test_id("stImage").nth(1)).to_be_visible(timeout=20_000)  # the photo and its 28x28
    shot(page, "05-predict")
    fake = tmp_path / "notes.png"
    fake.write_text("a text file wearing a .png name")
    drop(page, "Drop images of clothing here", fake)
    expect(page.get_by_text(re.compile("Cannot classify this file: not an image"))).to_be_visible(
        timeout=20_000
    )
    expect(page.get_by_role("heading", name="Predict")).to_be_visible()
    page.get_by_role("tab", name="Test-set samples").click()
    expect(page.get_by_text(re.compile(r"^Prediction: .+ — truth: "))).to_be_visible(timeout=20_000)
    shot(page, "06-predict-error")


def test_a_photo_dropped_before_any_model_is_classified_after_the_quick_training(
    real_data, page: Page, tmp_path
):
    """A newcomer's first visit: no runs at all, a photo dropped first, then one click to train."""
    from PIL import Image, ImageDraw

    from bench.harness import stop_runs, streamlit_server

    photo = tmp_path / "trousers.png"
    image = Image.new("RGB", (800, 600), (236, 232, 225))
    ImageDraw.Draw(image).polygon([(330, 80), (470, 80), (500, 520), (410, 520), (400, 200), (390, 520),
                                   (300, 520)], fill=(40, 50, 90))  # fmt: skip
    image.save(photo)
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    try:
        with streamlit_server(runs_dir, tmp_path / "streamlit.log") as fresh:
            page.goto(f"{fresh.url}/Predict")
            expect(page.get_by_text("There is no trained model yet")).to_be_visible(timeout=20_000)
            drop(page, "Drop images of clothing here", photo)
            expect(page.get_by_text("File: trousers.png")).to_be_visible(timeout=20_000)
            expect(page.get_by_text("What the model sees (28×28)")).to_be_visible()
            waiting = page.get_by_text(re.compile("^No model to ask yet"))  # in the photo's box
            expect(waiting).to_be_visible()
            shot(page, "07-predict-before-a-model")
            page.get_by_role("button", name="Train a quick model").click()
            top1 = page.get_by_text(re.compile(r"^Top-1: .+ · \d+\.\d%$"))
            expect(top1).to_be_visible(timeout=240_000)  # one epoch of the MLP, then the page reruns
            expect(page.get_by_text("File: trousers.png")).to_be_visible()
            expect(waiting).to_have_count(0)
            shot(page, "08-predict-after-the-quick-model")
    finally:
        stop_runs(runs_dir)


def test_train_live_survives_a_page_switch_and_stops(server, page: Page):
    page.goto(f"{server.url}/Train")
    expect(page.get_by_role("heading", name=re.compile(r"Train$"))).to_be_visible(timeout=20_000)
    spare_pid = spare.ready_pid(server.runs_dir)  # nothing trains: the sidebar keeps a worker warm
    assert spare_pid is not None
    start = time.monotonic()
    start_run(page, epochs=20, cap=3000)
    # The new run's live view (its Stop button), not a finished run's chart shown before Start.
    expect(page.get_by_role("button", name="Stop")).to_be_visible(timeout=20_000)
    first = wait_points(page, 0)
    _record("train_first_chart_point_s", time.monotonic() - start)
    active = runs.active_run(runs_dir=server.runs_dir)
    assert active is not None and active.pid == spare_pid  # the warm worker took the run
    mark = wait_in_place(page)
    second = wait_points(page, first)
    wait_points(page, second)  # grew twice, with no reload
    assert live_chart(page)["mark"] == mark  # the same Plotly chart, updated in place, not rebuilt
    shot(page, "04-train-live")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Dataset Explorer").click()
    expect(page.get_by_role("heading", name="Dataset Explorer")).to_be_visible(timeout=10_000)
    expect(page.get_by_test_id("stSidebar").get_by_text("Training now")).to_be_visible(timeout=10_000)
    _grid_captions(page)
    _idle(page)  # the explorer has finished drawing: time the switch alone, not the rest of that page
    switch = time.monotonic()
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Train").click()
    expect(page.get_by_role("button", name="Stop")).to_be_visible(timeout=10_000)
    _record("switch_to_train_s", time.monotonic() - switch)
    wait_points(page, 0)
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text("Stopped before the end")).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("stMetric").first).to_be_visible()
    shot(page, "04-train-stopped")


def test_two_users_share_the_device_but_not_their_uploads(server, trained_run, browser, tmp_path):
    from PIL import Image

    alice = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    bob = browser.new_context(viewport={"width": 800, "height": 900}).new_page()  # a narrow window too
    try:
        sample = tmp_path / "alice-shirt.png"
        Image.new("L", (28, 28), 0).save(sample)
        alice.goto(f"{server.url}/Predict")
        expect(alice.get_by_role("heading", name="Predict")).to_be_visible(timeout=20_000)
        drop(alice, "Drop images of clothing here", sample)
        expect(alice.get_by_text("File: alice-shirt.png")).to_be_visible(timeout=20_000)
        bob.goto(f"{server.url}/Predict")
        expect(bob.get_by_role("heading", name="Predict")).to_be_visible(timeout=20_000)
        expect(bob.get_by_text("alice-shirt.png")).to_have_count(0)

        alice.goto(f"{server.url}/Train")
        expect(alice.get_by_role("heading", name=re.compile(r"Train$"))).to_be_visible(timeout=20_000)
        start_run(alice, epochs=20, cap=3000)
        wait_points(alice, 0)
        bob.goto(f"{server.url}/Train")
        expect(bob.get_by_role("button", name="Stop")).to_be_visible(timeout=20_000)  # Bob sees it running
        bob.get_by_role("button", name="Start training").click()  # the CPU is busy: Bob's run waits
        expect(
            bob.locator(".studio-live-text").get_by_text(re.compile(r"^queued: next in line for cpu"))
        ).to_be_visible(timeout=20_000)
        expect(bob.get_by_role("button", name="Cancel")).to_be_visible()
        shot(bob, "07-second-user-queued-narrow")
        alice.get_by_role("button", name="Stop").click()
        expect(alice.get_by_text("Stopped before the end")).to_be_visible(timeout=30_000)
        # Alice's run ended: Bob's starts by itself, and his page follows it
        expect(bob.get_by_role("button", name="Stop")).to_be_visible(timeout=30_000)
        bob.get_by_role("button", name="Stop").click()
    finally:
        alice.context.close()
        bob.context.close()


def _title(page: Page, name: str):
    return page.get_by_role("heading", level=1, name=re.compile(f"{name}$"))


LEARN_PAGES = [
    "Tensors",
    "Dataset Explorer",
    "Transforms",
    "Build Model",
    "Autograd",
    "Optimization",
    "Save & Load",
]


def test_a_learner_walks_the_learn_section_in_the_tutorials_order(server, page: Page):
    page.goto(server.url)
    expect(page.get_by_role("heading", name="FashionMNIST Studio")).to_be_visible(timeout=15_000)
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_text("Learn the basics")).to_be_visible()
    links = [text.split("\n")[-1] for text in nav.get_by_role("link").all_inner_texts()]  # after the icon
    assert [name for name in links if name in LEARN_PAGES] == LEARN_PAGES
    assert links.index("Save & Load") < links.index("Train") < links.index("Predict")

    nav.get_by_role("link", name="Tensors").click()
    expect(_title(page, "Tensors")).to_be_visible(timeout=15_000)
    expect(page.get_by_text("Shape of tensor: torch.Size([3, 4])")).to_be_visible(timeout=15_000)
    shape = page.locator(".st-key-tensors_shape input")
    shape.fill("2x2x2")
    shape.press("Enter")
    expect(page.get_by_text("rand_tensor = torch.rand(shape, dtype=torch.float32)").first).to_be_visible()
    expect(page.get_by_text("shape = (2, 2, 2,)").first).to_be_visible(timeout=10_000)
    shot(page, "09-tensors")

    nav.get_by_role("link", name="Dataset Explorer").click()
    expect(_title(page, "Dataset Explorer")).to_be_visible(timeout=15_000)
    nav.get_by_role("link", name="Transforms").click()
    expect(_title(page, "Transforms")).to_be_visible(timeout=15_000)

    nav.get_by_role("link", name="Build Model").click()
    expect(_title(page, "Build Model")).to_be_visible(timeout=15_000)
    try:
        expect(page.get_by_text("669,706").first).to_be_visible(timeout=15_000)
    finally:
        shot(page, "10-build-model")
    # every Learn page ends with the code a learner would write, as one file to copy or download
    expect(page.get_by_role("heading", name="The code you would write")).to_be_attached()
    expect(page.get_by_role("button", name="Download build_model.py")).to_be_attached()

    nav.get_by_role("link", name="Autograd").click()
    expect(_title(page, "Autograd")).to_be_visible(timeout=15_000)
    expect(
        page.get_by_text("Gradient function for loss = BinaryCrossEntropyWithLogitsBackward0")
    ).to_be_visible()
    page.get_by_role("button", name="loss.backward()").click()
    expect(page.get_by_text(re.compile(r"Largest difference: .+ they agree"))).to_be_visible(timeout=15_000)
    shot(page, "11-autograd")
    page.get_by_role("button", name="loss.backward()").click()
    expect(page.get_by_text(re.compile("^RuntimeError: Trying to backward through the graph"))).to_be_visible(
        timeout=15_000
    )

    nav.get_by_role("link", name="Optimization").click()
    expect(_title(page, "Optimization")).to_be_visible(timeout=15_000)
    page.get_by_role("button", name="pred = model(X); loss = loss_fn(pred, y)").click()
    expect(page.get_by_text(re.compile(r"loss = \d\.\d{4} on this batch"))).to_be_visible(timeout=15_000)
    page.get_by_role("button", name="loss.backward()").click()
    _idle(page)
    page.get_by_role("button", name="optimizer.step()").click()
    expect(page.get_by_text(re.compile(r"the loss on this batch went from"))).to_be_visible(timeout=15_000)
    shot(page, "12-optimization")

    nav.get_by_role("link", name="Save & Load").click()
    expect(_title(page, "Save & Load")).to_be_visible(timeout=15_000)
    expect(page.get_by_text(re.compile(r"model2, loaded, answers as model on 8 of 8 images"))).to_be_visible(
        timeout=15_000
    )
    expect(page.get_by_text("UnpicklingError").first).to_be_attached()
    expect(page.get_by_role("button", name="Download save_load.py")).to_be_attached()
    shot(page, "13-save-load")


RACE_JS = """() => {
  const found = '.studio-live-chart, [data-testid=stPlotlyChart] .js-plotly-plot';  // in place, or built in
  const plot = [...document.querySelectorAll(found)]
    .find((p) => p.layout && p.layout.title && String(p.layout.title.text).includes('Batch loss, every'));
  return plot ? plot.data.map((t) => (t.x ? t.x.length : 0)) : [];
}"""


def test_a_ready_made_race_grows_its_curves_together_live(server, page: Page):
    page.goto(f"{server.url}/Optimization")
    expect(_title(page, "Optimization")).to_be_visible(timeout=15_000)
    # The page opens on the optimizer race, its contenders listed (the table is a canvas: its cells are
    # attached for screen readers, not visible); the learning rates race is one click.
    expect(page.get_by_role("radio", name="Optimizers", exact=True)).to_be_checked(timeout=30_000)
    expect(page.get_by_test_id("stDataFrame").get_by_text("SGD + momentum 0.9").first).to_be_attached()
    page.get_by_role("radio", name="Learning rates", exact=True).click()
    _idle(page)
    page.get_by_role("button", name="Start the race").click()
    deadline, seen = time.monotonic() + 120, []
    while time.monotonic() < deadline:
        with contextlib.suppress(PlaywrightError):
            seen.append(page.evaluate(RACE_JS))
        if len(seen) > 1 and seen[-1] and len(seen[-1]) == 5 and min(seen[-1]) >= 3:
            break
        time.sleep(0.5)
    counts = seen[-1] if seen else []
    assert len(counts) == 5 and min(counts) >= 3, f"the race's curves did not grow: {seen[-5:]}"
    assert max(counts) - min(counts) <= 1  # together: every contender has the same logged steps
    expect(page.get_by_test_id("stSidebar").get_by_text("Optimizer race running")).to_be_visible()
    page.get_by_text("Batch loss, every contender").scroll_into_view_if_needed()
    shot(page, "13-race")
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text(re.compile("^stopped · step"))).to_be_visible(timeout=60_000)


@pytest.mark.parametrize(
    ("path", "title"),
    [("Dataset_Explorer", "Dataset Explorer"), ("Build_Model", "Build Model"), ("Train?epochs=7", "Train")],
)
def test_a_link_copied_before_the_pages_were_renamed_opens_on_a_fresh_server(
    tmp_path_factory, real_data, browser, path, title
):
    """The page files lost their numbers (3_Train.py is Train.py), their addresses did not: on a fresh
    server, which still finds its pages by file name until app.py has run once, and in the app after."""
    server_runs = tmp_path_factory.mktemp("fresh-runs")
    for fresh in serve(tmp_path_factory, server_runs, "fresh"):
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{fresh.url}/{path}")
        expect(page.get_by_role("heading", name=title).first).to_be_visible(timeout=30_000)
        expect(page.get_by_text("Page not found")).to_have_count(0)
        if path.startswith("Train"):
            form = page.locator(".st-key-train_form")
            expect(form.get_by_role("textbox", name="Epochs", exact=True)).to_have_value("7", timeout=20_000)
        for other in ("Tensors", "Optimization", "Predict"):
            page.goto(f"{fresh.url}/{other}")
            expect(page.get_by_role("heading", name=other).first).to_be_visible(timeout=30_000)
        page.close()
