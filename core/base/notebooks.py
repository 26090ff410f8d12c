"""Jupyter notebooks (.ipynb) written with nbformat: markdown and code cells in order, validated.

The exported run (core.training.export.notebook) and every Learn page (core.learn.program.Program.notebook)
are built here. Cell ids are numbered, not random, so the same export gives the same file (the page's
download and `python -m core export` alike). Code cells hold generated code only, whose values went in as
literals; markdown cells hold the tutorial's words.
"""

from dataclasses import dataclass, field

PARAMETERS_TAG = "parameters"  # papermill's and Jupyter's tag for the cell of values to change


@dataclass(frozen=True)
class Cell:
    kind: str  # "markdown" or "code"
    text: str
    tags: tuple[str, ...] = field(default=())


def markdown(text: str) -> Cell:
    return Cell("markdown", text.strip())


def code(text: str, *tags: str) -> Cell:
    return Cell("code", text.strip(), tags)


def notebook(cells: list[Cell]) -> str:
    """The notebook's JSON text (nbformat 4), validated against the format's schema."""
    import nbformat  # the format's own library: only where a notebook is made

    book = nbformat.v4.new_notebook()
    book.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    for number, cell in enumerate(cells, 1):
        made = nbformat.v4.new_markdown_cell if cell.kind == "markdown" else nbformat.v4.new_code_cell
        book.cells.append(made(cell.text, id=f"cell-{number}"))
        if cell.tags:
            book.cells[-1].metadata["tags"] = list(cell.tags)
    nbformat.validate(book)
    return nbformat.writes(book) + "\n"


def code_cells(text: str) -> list[str]:
    """The code cells of a notebook's JSON text, in order (for running them as one script)."""
    import nbformat

    return [cell.source for cell in nbformat.reads(text, as_version=4).cells if cell.cell_type == "code"]
