"""The pages of the app in one place: navigation, the home page's links and each page's title."""

from dataclasses import dataclass

import streamlit as st

APP_ICON = ":material/checkroom:"


@dataclass(frozen=True)
class PageInfo:
    path: str
    title: str
    icon: str  # a Material Symbol, bundled with Streamlit (no emoji font needed)
    blurb: str


PAGES = {
    "explorer": PageInfo("pages/1_Dataset_Explorer.py", "Dataset Explorer", ":material/grid_view:",
                         "samples, classes, what a DataLoader yields"),
    "transforms": PageInfo("pages/2_Transforms.py", "Transforms", ":material/auto_fix_high:",
                           "torchvision transforms on real samples, one-hot labels"),
    "train": PageInfo("pages/3_Train.py", "Train", ":material/monitoring:",
                      "pick hyperparameters, train, watch loss and accuracy live"),
    "predict": PageInfo("pages/4_Predict.py", "Predict", ":material/image_search:",
                        "drop an image or a model.pth and see the prediction"),
}  # fmt: skip


def title(key: str) -> None:
    """The page's heading, with the same icon and words as its navigation entry. Call it first."""
    _leave_folder_discovery()
    info = PAGES[key]
    st.title(f"{info.icon} {info.title}")


def _leave_folder_discovery() -> None:
    """Make sure the page runs inside app.py's navigation (sidebar, page config), not on its own.

    With a pages/ folder, Streamlit 1.67 starts each server process in its old folder-discovery
    mode: until app.py has called st.navigation once, a page opened by its URL (a bookmark, a
    reload after a restart) runs alone. The flag below is how Streamlit itself leaves that mode
    (st.navigation clears it); clearing it here and rerunning sends this visit through app.py.
    The browser tests open a page by URL on a fresh server to prove it.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
