"""The pages of the app in one place: navigation, the home page's links and each page's title."""

from dataclasses import dataclass

import streamlit as st
from streamlit.errors import StreamlitAPIException
from streamlit.runtime.pages_manager import PagesManager

APP_ICON = ":material/checkroom:"


LEARN, TOOLS = "Learn the basics", "Tools"  # the sidebar's two sections
COURSE_START = "tensors"  # the first page a newcomer is sent to: the home page's "Start here"
TUTORIAL_URL = "https://pytorch.org/tutorials/beginner/basics/intro.html"


@dataclass(frozen=True)
class PageInfo:
    path: str
    title: str
    icon: str  # a Material Symbol, bundled with Streamlit (no emoji font needed)
    blurb: str
    section: str  # LEARN or TOOLS
    lesson: str  # the tutorial section(s) the page is, in the tutorial's words
    address: str = ""  # the URL path where the title does not make one ("Save & Load"); "": from the title
    goal: str = ""  # a Learn page's goal, in one line
    task: str = ""  # and one thing to try first

    @property
    def url_path(self) -> str:
        """The page's address, "Dataset_Explorer" for "Dataset Explorer": the same since the pages were
        numbered files (1_Dataset_Explorer.py), so links people copied still open the page."""
        return self.address or self.title.replace(" ", "_")


# In the sidebar's order: the Learn pages follow the tutorial, then the tools.
PAGES = {
    "tensors": PageInfo("pages/Tensors.py", "Tensors", ":material/data_array:",
                        "create, index, join and compute with tensors", LEARN, "Tensors",
                        goal="make tensors, and know the shape of what each operation gives back.",
                        task="join three copies with `torch.cat` along dim 1, predict the shape, then switch "
                             "to `torch.stack`."),
    "explorer": PageInfo("pages/Dataset_Explorer.py", "Dataset Explorer", ":material/grid_view:",
                         "samples, classes, what a DataLoader yields", LEARN, "Datasets & DataLoaders",
                         goal="see what FashionMNIST holds, and what a DataLoader hands the model at a time.",
                         task="set the batch size to 100 and predict `len(dataloader)` and the last batch "
                              "before the page counts them."),
    "transforms": PageInfo("pages/Transforms.py", "Transforms", ":material/auto_fix_high:",
                           "torchvision transforms on real samples, one-hot labels", LEARN, "Transforms",
                           goal="turn PIL images and integer labels into the tensors a model takes.",
                           task="start over from the Normalized preset and predict the value range before "
                                "the statistics show it."),
    "build_model": PageInfo("pages/Build_Model.py", "Build Model", ":material/account_tree:",
                            "the network layer by layer on a real image", LEARN, "Build the Neural Network",
                            goal="follow one real image through the network, layer by layer, to 10 scores.",
                            task="predict the shape after `nn.Flatten()`, then pick the CNN and see where "
                                 "its shapes differ."),
    "autograd": PageInfo("pages/Autograd.py", "Autograd", ":material/device_hub:",
                         "the graph autograd records, gradients checked by hand", LEARN,
                         "Automatic Differentiation with torch.autograd",
                         goal="see the graph autograd records, and check the gradients it computes.",
                         task="press backward() twice without zeroing and watch `.grad` against the finite "
                              "differences."),
    "optimization": PageInfo("pages/Optimization.py", "Optimization", ":material/trending_down:",
                             "the loss, the optimizer, one training step at a time", LEARN,
                             "Optimizing Model Parameters",
                             goal="take training apart: the loss, backward(), and the optimizer's step.",
                             task="set the learning rate to 1, take ten steps, and see whether the loss "
                                  "still falls."),
    "save_load": PageInfo("pages/Save_Load.py", "Save & Load", ":material/save:",
                          "state_dict out and in, eval() or train(), the whole pickled model", LEARN,
                          "Save and Load the Model", address="Save_Load",
                          goal="save a model's weights, load them into a new model, get the same answers.",
                          task="pick the untrained CNN and predict whether `train()` mode answers the same "
                               "twice."),
    "train": PageInfo("pages/Train.py", "Train", ":material/monitoring:",
                      "pick hyperparameters, train, watch loss and accuracy live", TOOLS,
                      "Quickstart: the whole training loop, in a worker"),
    "predict": PageInfo("pages/Predict.py", "Predict", ":material/image_search:",
                        "drop an image or a model.pth and see the prediction", TOOLS,
                        "Using a trained model: a model.pth asked about your own image"),
}  # fmt: skip


@dataclass(frozen=True)
class Lesson:
    name: str  # as the tutorial's table of contents says it
    page: str  # the PAGES key of the page that teaches it
    about: str
    icon: str = ""  # "": the page's own icon


# "Learn the Basics", its eight sections in order, and where each is in this app. The Quickstart is the
# whole loop at once (the Train page runs it); a newcomer learns its parts first, so its card starts the
# course.
TUTORIAL = (
    Lesson("Quickstart", COURSE_START, "the whole loop, which Train runs; its parts start with Tensors",
           ":material/flag:"),
    Lesson("Tensors", "tensors", "the data structure everything is made of"),
    Lesson("Datasets & DataLoaders", "explorer", "FashionMNIST and the batches it is served in"),
    Lesson("Transforms", "transforms", "from PIL images and labels to tensors"),
    Lesson("Build Model", "build_model", "nn.Module, layer by layer"),
    Lesson("Autograd", "autograd", "the graph behind .grad, and why no_grad"),
    Lesson("Optimization", "optimization", "hyperparameters, the loss, the optimizer, the loop"),
    Lesson("Save & Load", "save_load", "model.pth in and out, safely"),
)  # fmt: skip


VISITED = "nav_visited"  # session_state: the paths of the Learn pages opened in this browser session


def nav_icon(info: PageInfo) -> str:
    """A Learn page already opened in this session is ticked in the sidebar; the others show their icon."""
    return ":material/check_circle:" if info.path in st.session_state.get(VISITED, ()) else info.icon


def sections() -> dict[str, list[PageInfo]]:
    """The pages grouped for st.navigation: Learn first, in the tutorial's order, then the tools."""
    grouped: dict[str, list[PageInfo]] = {LEARN: [], TOOLS: []}
    for info in PAGES.values():
        grouped[info.section].append(info)
    return grouped


def title(key: str):
    """The page's heading, with the same icon and words as its navigation entry. Call it first.

    Returns the empty spot at the heading's right where `ui.link.keep` puts the page's "Copy link"."""
    _leave_folder_discovery()
    info = PAGES[key]
    if info.section == LEARN:
        st.session_state.setdefault(VISITED, set()).add(info.path)
    row = st.container(horizontal=True, vertical_alignment="center", horizontal_alignment="distribute")
    row.title(f"{info.icon} {info.title}", width="content")
    spot = row.container(width="content")
    st.caption(f"PyTorch [Learn the Basics]({TUTORIAL_URL}) · {info.lesson}")
    if info.goal:
        st.container(key="page_goal").markdown(
            f":material/flag: **Goal:** {info.goal}  \n:material/touch_app: **Try this:** {info.task}"
        )
    return spot


def _leave_folder_discovery() -> None:
    """Make sure the page runs inside app.py's navigation (sidebar, page config), not on its own.

    With a pages/ folder, Streamlit 1.67 starts each server process in its old folder-discovery
    mode: until app.py has called st.navigation once, a page opened by its URL (a bookmark, a
    reload after a restart) runs alone. The flag below is how Streamlit itself leaves that mode
    (st.navigation clears it); clearing it here and rerunning sends this visit through app.py.
    The browser tests open a page by URL on a fresh server to prove it.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def next_page(key: str) -> str | None:
    """The page after `key` in the course's order: the Learn pages as the tutorial orders them, then Train,
    where the Quickstart's whole loop runs; None after that."""
    learn = [k for k, info in PAGES.items() if info.section == LEARN]
    if key in learn:
        return learn[learn.index(key) + 1] if key != learn[-1] else "train"
    return None


def next_link(key: str) -> None:
    """ "Next: <section>", at the end of a Learn page."""
    following = next_page(key)
    if following is None:
        return
    info = PAGES[following]
    try:
        st.page_link(info.path, label=f"Next: {info.title}", icon=":material/arrow_forward:")
    except StreamlitAPIException:  # a page run on its own, outside app.py's navigation (AppTest of one page)
        st.caption(f"Next: {info.title}")
