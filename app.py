"""FashionMNIST Studio's entry point: page config, navigation, the shared sidebar and the home page."""

import pandas  # noqa: F401  (see below)
import streamlit as st

from core import runs
from core.data.fashion import dataset_status
from ui.cache import device_info
from ui.layout import fit_to_screen, tiles
from ui.nav import APP_ICON, COURSE_START, PAGES, TUTORIAL, TUTORIAL_URL, nav_icon, sections
from ui.sidebar import format_device, render_sidebar, show_score
from ui.text import escape_markdown

# pandas is imported here, once, before any page runs: plotly looks it up in sys.modules without
# waiting for its import, so a page importing pandas in one script thread while another thread drew a
# chart gave "partially initialized module 'pandas'" (seen in the e2e run of the Learn pages).


def home() -> None:
    st.title(f"{APP_ICON} FashionMNIST Studio")
    _start_here()
    status = dataset_status()
    if not status.ready:  # nothing here works without it: said at the top, with what to run
        st.warning(status.message)
    _lessons()
    _latest_runs()
    _where_it_runs(status)


def _start_here() -> None:
    """What this is, in two lines, and one button to the course's first page."""
    start = PAGES[COURSE_START]
    with st.container(border=True, key="home_start"):
        st.subheader("Start here")
        st.markdown(
            f"PyTorch's [Learn the Basics]({TUTORIAL_URL}) course, a page per section: each idea live on "
            "real FashionMNIST images, with the code that produced it.  \n"
            "Then the tools: train a model, watch it learn, and ask it about a photo of your own."
        )
        if st.button(
            f"Start with {start.title}",
            type="primary",
            icon=":material/arrow_forward:",
            icon_position="right",
        ):
            st.switch_page(start.path)


def _lessons() -> None:
    st.subheader("Learn the basics")
    st.caption(f"The eight sections of PyTorch's [Learn the Basics]({TUTORIAL_URL}), and where each is here.")
    for card, (number, lesson) in zip(
        tiles("home_lesson", len(TUTORIAL), 180), enumerate(TUTORIAL, start=1), strict=True
    ):
        with card:
            page = PAGES[lesson.page]
            st.page_link(page.path, label=f"{number}. {lesson.name}", icon=lesson.icon or page.icon)
            st.caption(lesson.about)


def _latest_runs() -> None:
    st.subheader("Latest runs")
    latest = runs.list_runs()[:5]
    waiting = runs.places_in_queue() if any(r.status == "queued" for r in latest) else {}
    if not latest:
        st.info(
            "No training runs yet. Start one on the Train page: the MLP trains an epoch in seconds on a CPU."
        )
    for run in latest:
        if run.status == runs.DAMAGED:  # listed with what is wrong; the other runs show as usual
            st.markdown(f"`{run.id}` · **{run.status}** · {escape_markdown(run.error or '')}")
            continue
        accuracy = f"{run.best_test_acc:.1%}" if run.best_test_acc is not None else "—"
        model = run.config.model.upper() if run.config else "?"
        # The Train page's words: "training" (queued or running), and where it is (runs.Progress)
        status = f"**training** · {runs.progress(run).label}" if run.active else f"**{run.status}**"
        if run.id in waiting:  # its place in the queue, as the Train page says it
            status = f"**queued** · {waiting[run.id].words}"
        st.markdown(f"`{run.id}` · {model} · {status} · best test accuracy {accuracy}")


# Where the dataset came from, in a newcomer's words (core.data.fashion's DatasetStatus.source).
_SOURCES = {
    "local": "found in the project's data folder",
    "system": "copied from Debian's dataset-fashion-mnist package",
    "download": "downloaded by torchvision",
}


def _where_it_runs(status) -> None:
    """The device and the dataset: details for later, small, at the bottom."""
    st.markdown("##### Where it runs")
    st.caption(
        f"**Device:** {format_device(device_info())}. Training and prediction run here; "
        "choose another device on the Train page."
    )
    if status.ready:
        source = _SOURCES.get(status.source, status.source)
        st.caption(f"**Dataset:** FashionMNIST is ready ({source}), in {escape_markdown(str(status.path))}.")


st.set_page_config(page_title="FashionMNIST Studio", page_icon=APP_ICON, layout="wide")
navigation = st.navigation(
    {
        "": [st.Page(home, title="Home", icon=":material/home:", default=True)],
        **{
            section: [st.Page(p.path, title=p.title, icon=nav_icon(p), url_path=p.url_path) for p in pages]
            for section, pages in sections().items()
        },
    }
)
render_sidebar()
fit_to_screen()
score = st.sidebar.empty()  # filled after the page: a prediction committed in this run counts at once
navigation.run()
with score.container():
    show_score()
