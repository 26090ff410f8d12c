""" "The code you would write": a Learn page's section of the tutorial as one runnable file, in pieces.

Each Learn page builds a `Program` from its current controls. The pieces are the tutorial's code in its
order (data, the class, the loops, save and load, ...); each names the part of the page it makes, so the
page can link the two. `source()` joins them into one file that runs as is with torch and torchvision
(`python tensors.py`), printing what the page shows: a unit test per page runs it and compares.

Values from controls enter the code as literals only (`repr`, via `literal`); nothing a user types is code.
"""

import math
from dataclasses import dataclass

from core.base import notebooks

HEADING = "The code you would write"
ANCHOR = "the-code-you-would-write"  # the heading's anchor, for links from the page's sections


@dataclass(frozen=True)
class Piece:
    title: str  # what this part of the file does, in the tutorial's words: "Define the class"
    code: str  # runs after the pieces before it
    shows: str = ""  # the part of the page it makes, in the page's words: "the layer trace"
    anchor: str = ""  # that part's heading anchor on the page ("one-image-through-the-model"), if any


@dataclass(frozen=True)
class Program:
    page: str  # the page's key in ui.nav.PAGES: "build_model"
    summary: str  # one line for the file's docstring: "Build the Neural Network: ..."
    pieces: tuple[Piece, ...]
    needs: str = "torch and torchvision"  # what `python <file>` needs installed
    loads_data: bool = True  # it opens FashionMNIST (torchvision downloads it into ./data)

    @property
    def file_name(self) -> str:
        return f"{self.page}.py"

    def source(self) -> str:
        """The whole file: a docstring, then each piece under a comment naming it and what it makes."""
        usage = f"From FashionMNIST Studio. Needs {self.needs}: python {self.file_name}"
        parts = [f'"""{self.summary}\n\n{usage}\n"""']
        for number, piece in enumerate(self.pieces, 1):
            comment = f"# {number}. {piece.title}"
            if piece.shows:
                comment += f" (the page's {piece.shows})"
            parts.append(f"{comment}\n{piece.code.strip()}")
        return "\n\n\n".join(parts) + "\n"

    @property
    def notebook_name(self) -> str:
        return f"{self.page}.ipynb"

    def notebook(self) -> str:
        """The same file as a Jupyter notebook: a markdown cell naming each piece, then its code, in order;
        run top to bottom, it prints what `source()` prints."""
        data = " It downloads FashionMNIST into `./data` the first time." if self.loads_data else ""
        intro = f"# {self.summary}\n\nFrom FashionMNIST Studio. Needs {self.needs}.{data}"
        cells = [notebooks.markdown(intro)]
        for number, piece in enumerate(self.pieces, 1):
            words = f"## {number}. {piece.title}"
            if piece.shows:
                words += f"\n\nOn the page: {piece.shows}."
            cells += [notebooks.markdown(words), notebooks.code(piece.code)]
        return notebooks.notebook(cells)


def literal(value: object) -> str:
    """A control's value as Python source: only plain numbers, strings, booleans, None, and tuples/lists
    of them, written with repr. Anything else is a programming error, never silently str()-ed into code."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no literal in Python source")
        return repr(value)
    if isinstance(value, (tuple, list)):
        inner = ", ".join(literal(v) for v in value)
        if isinstance(value, tuple):
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        return f"[{inner}]"
    raise TypeError(f"no literal for {type(value).__name__}")
