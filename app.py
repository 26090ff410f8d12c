"""FashionMNIST Studio's entry point: page config, navigation, the shared sidebar and the home page."""

import pandas  # noqa: F401  (see below)
import streamlit as st

from core import runs
from core.data.fashion import dataset_status
from ui.cache import device_info
from ui.nav import APP_ICON, PAGES, TUTORIAL, TUTORIAL_URL, sections
from ui.sidebar import format_device, render_sidebar
from ui.text import escape_markdown

# pandas is imported here, once, before any page runs: plotly looks it up in sys.modules without
# waiting for its import, so a page importing pandas in one script thread while another thread drew a
# chart gave "partially initialized module 'pandas'" (seen in the e2e run of the Learn pages).


def home() -> None:
    st.title(f"{APP_ICON} FashionMNIST Studio")
    st.write(
        "PyTorch's *Learn the Basics* quickstart as a dashboard you click through: browse FashionMNIST, "
        "preview torchvision transforms, train a model and watch it learn live. "
        "Then drop in a photo of a piece of clothing and see what your model thinks it is."
    )
    device_col, data_col = st.columns(2)
    with device_col, st.container(border=True):
        st.subheader("Device")
        st.markdown(f"**{format_device(device_info())}**")
        st.caption("Training and prediction run here; choose another device on the Train page.")
    with data_col, st.container(border=True):
        st.subheader("Dataset")
        status = dataset_status()
        if status.ready:
            st.success(f"FashionMNIST is ready (source: {status.source}).")
            st.caption(str(status.path))
        else:
            st.warning(status.message)
    _lessons()
    _latest_runs()


def _lessons() -> None:
    st.subheader("Learn the basics")
    st.caption(f"The eight sections of PyTorch's [Learn the Basics]({TUTORIAL_URL}), and where each is here.")
    with st.container(horizontal=True):  # cards wrap onto more rows in a narrow window
        for number, lesson in enumerate(TUTORIAL, start=1):
            with st.container(border=True, width=190):
                if lesson.page is None:
                    st.markdown(f"**{number}. {lesson.name}**")
                else:
                    page = PAGES[lesson.page]
                    st.page_link(page.path, label=f"{number}. {lesson.name}", icon=page.icon)
                st.caption(lesson.about)


def _latest_runs() -> None:
    st.subheader("Latest runs")
    latest = runs.list_runs()[:5]
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
        st.markdown(f"`{run.id}` · {model} · {status} · best test accuracy {accuracy}")


st.set_page_config(page_title="FashionMNIST Studio", page_icon=APP_ICON, layout="wide")
navigation = st.navigation(
    {
        "": [st.Page(home, title="Home", icon=":material/home:", default=True)],
        **{
            section: [st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path) for p in pages]
            for section, pages in sections().items()
        },
    }
)
render_sidebar()
navigation.run()
