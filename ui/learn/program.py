"""The end of every Learn page: "The code you would write", one runnable file, each piece linked."""

import streamlit as st

from core.learn.program import ANCHOR, HEADING, Program
from ui.nav import next_link


def render(program: Program) -> None:
    """The heading, what the file is, links from each piece to what it makes above, the file with its
    Copy button (st.code's, top right) and a download of it."""
    st.divider()
    st.subheader(f":material/code_blocks: {HEADING}", anchor=ANCHOR)
    data = ", and downloads FashionMNIST into `./data` the first time" if program.loads_data else ""
    st.markdown(
        "This section of the tutorial as one file, written from this page's controls: copy it or download "
        f"it, and `python {program.file_name}` prints what this page shows (it needs {program.needs}{data})."
    )
    links = [_link(n, piece.title, piece.anchor, piece.shows) for n, piece in enumerate(program.pieces, 1)]
    st.markdown("\n".join(f"- {link}" for link in links))
    st.code(program.source(), language="python", line_numbers=True)
    row = st.container(horizontal=True)
    row.download_button(
        f"Download {program.file_name}",
        program.source(),
        file_name=program.file_name,
        mime="text/x-python",
        icon=":material/download:",
        key=f"program_download_{program.page}",
    )
    row.download_button(
        "Open as notebook",
        program.notebook(),
        file_name=program.notebook_name,
        mime="application/x-ipynb+json",
        icon=":material/book_2:",
        key=f"program_notebook_{program.page}",
        help=f"{program.notebook_name}: the same code, a cell per piece under its heading, for Jupyter, "
        "VS Code or Colab.",
    )
    next_link(program.page)  # and on, in the course's order


def _link(number: int, title: str, anchor: str, shows: str) -> str:
    line = f"**{number}. {title}**"
    if shows:
        line += f" makes [{shows}](#{anchor})" if anchor else f" makes {shows}"
    return line
