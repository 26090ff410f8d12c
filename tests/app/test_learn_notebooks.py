"""Every Learn page offers its "code you would write" as a notebook too ("Open as notebook"): the file its
Program makes from the page's current controls, valid nbformat (the program tests run its cells)."""

import nbformat
import pytest
from streamlit.testing.v1 import AppTest

from core.data.fashion import PROJECT_ROOT
from tests.app.conftest import answers_shown
from ui.nav import PAGES

LEARN = [key for key, info in PAGES.items() if info.section == PAGES["tensors"].section]


@pytest.mark.parametrize("key", LEARN)
def test_every_learn_page_offers_its_program_as_a_notebook(real_data, downloads, key):
    at = answers_shown(AppTest.from_file(str(PROJECT_ROOT / PAGES[key].path), default_timeout=120)).run()
    assert not at.exception
    (name,) = [n for n in downloads if n and n.endswith(".ipynb")]
    script_name = name.removesuffix(".ipynb") + ".py"
    book = nbformat.reads(downloads[name].decode(), as_version=4)
    nbformat.validate(book)
    code = [c.source for c in book.cells if c.cell_type == "code"]
    script = downloads[script_name].decode()
    assert code and all(cell in script for cell in code)  # the page's file, cell by cell, in its order
    assert [script.index(cell) for cell in code] == sorted(script.index(cell) for cell in code)
