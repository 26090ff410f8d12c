"""The Tensors page: each panel shows its code and exactly what core.learn.tensors computes; bad choices
get a message, never an exception."""

import pytest
from streamlit.testing.v1 import AppTest

from core.data.fashion import PROJECT_ROOT, fashion_mnist
from core.learn import tensors
from core.learn.program import ANCHOR
from core.learn.programs import tensors as programs

PAGE = str(PROJECT_ROOT / "pages" / "Tensors.py")


@pytest.fixture
def at(real_data) -> AppTest:
    page = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run().switch_page(PAGE).run()
    assert not page.exception
    return page


def _codes(at: AppTest) -> list[str]:
    return [block.value for block in at.code if not block.value.startswith("?")]  # not the Copy link


def _shows(at: AppTest, snippet: tensors.Snippet) -> bool:
    """The snippet's code and its output are both on the page, the output right after the code."""
    codes, code = _codes(at), snippet.code.rstrip("\n")  # st.code drops the final newline
    if code not in codes:
        return False
    return codes[codes.index(code) + 1] == snippet.output.rstrip("\n")


def _see_all(at: AppTest) -> AppTest:
    """Press "Just show me" on every prediction the page asks (tests/app/test_moments.py tries them)."""
    for key in ("moment_tensors-join_show", "moment_tensors-numpy_show"):
        if any(b.key == key for b in at.button):
            at.button(key=key).click().run()
    return at


def test_every_panel_shows_its_code_and_output_for_the_defaults(at):
    image, label = fashion_mnist("train")[0]
    _see_all(at)
    for snippet in (
        tensors.initializing((2, 3), "float32", 0),
        tensors.attributes((3, 4), "float32", True),
        tensors.image_slice(image, label, 0, (9, 15), (10, 18)),
        tensors.zero_column(1),
        tensors.joining("cat", 0, 3),
        tensors.arithmetic("matrix product", 3, 2, 5.0),
        tensors.numpy_bridge(5, 1.0),
    ):
        assert _shows(at, snippet), snippet.code
    assert _codes(at)[0] == tensors.PRELUDE.rstrip("\n")
    assert [s.value for s in at.subheader] == [
        "1. Initializing a tensor", "2. Attributes of a tensor", "3. Indexing and slicing",
        "4. Joining tensors", "5. Arithmetic operations", "6. Bridge with NumPy",
        ":material/code_blocks: The code you would write",
    ]  # fmt: skip
    assert any("Learn the Basics" in c.value and "Tensors" in c.value for c in at.caption)
    assert any("no accelerator" in i.value for i in at.info)  # this CPU machine says so


def test_controls_change_the_code_and_the_output(at):
    at.text_input(key="tensors_shape").set_value("4x2").run()
    at.selectbox(key="tensors_dtype").set_value("float64").run()
    at.number_input(key="tensors_seed").set_value(42).run()
    assert _shows(at, tensors.initializing((4, 2), "float64", 42))
    at.number_input(key="tensors_sample").set_value(123).run()
    at.slider(key="tensors_rows").set_value((0, 28)).run()
    image, label = fashion_mnist("train")[123]
    assert _shows(at, tensors.image_slice(image, label, 123, (0, 28), (10, 18)))
    at.selectbox(key="tensors_column").set_value(-1).run()
    assert _shows(at, tensors.zero_column(-1))
    at.selectbox(key="tensors_op").set_value("in-place add").run()
    at.number_input(key="tensors_op_value").set_value(2.5).run()
    assert _shows(at, tensors.arithmetic("in-place add", 3, 2, 2.5))
    assert any("loss of history" in w.value for w in at.warning)
    at.slider(key="tensors_np_length").set_value(3).run()
    assert _shows(_see_all(at), tensors.numpy_bridge(3, 1.0))
    assert not at.exception and not at.error


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("tensors_shape", "2, 0", "every dimension must be at least 1"),
        ("tensors_shape", "100000, 100000", "10,000,000,000 values"),
        ("tensors_shape", "import os", "is not a shape"),
        ("tensors_attr_shape", "", "is not a shape"),
    ],
)
def test_a_bad_shape_shows_a_message_and_the_rest_of_the_page(at, key, value, message):
    at.text_input(key=key).set_value(value).run()
    assert not at.exception
    assert any(message in e.value for e in at.error)
    assert len(at.subheader) == 6  # the other panels still show; the whole file waits for a shape that works
    assert any(i.value.startswith("The code you would write, as one file, shows once") for i in at.info)
    assert not any(message in c for c in _codes(at)[1:])


def test_a_sample_index_out_of_range_shows_a_message(at):
    at.number_input(key="tensors_sample").set_value(60_000).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["there is no sample 60,000: training_data holds 0 to 59,999"]


def _program(at: AppTest) -> str:
    """The page's "code you would write": the one code block that is a whole file."""
    return next(c for c in _codes(at) if c.startswith('"""Tensors:'))


def test_the_page_ends_with_the_file_its_controls_make_each_piece_linked_to_its_heading(at):
    assert _program(at) == programs.program(programs.Choices()).source().rstrip("\n")
    anchors = [s.proto.anchor for s in at.subheader]
    assert anchors[-1] == ANCHOR
    links = next(m.value for m in at.markdown if "makes [" in m.value)
    for piece in programs.program(programs.Choices()).pieces:
        assert not piece.anchor or (piece.anchor in anchors and f"](#{piece.anchor})" in links)
    assert at.get("download_button")[0].proto.label == "Download tensors.py"


def test_every_control_changes_the_file_too(at):
    at.text_input(key="tensors_shape").set_value("4x2").run()
    at.number_input(key="tensors_seed").set_value(42).run()
    at.toggle(key="tensors_attr_move").set_value(False).run()
    at.number_input(key="tensors_sample").set_value(123).run()
    at.selectbox(key="tensors_column").set_value(-1).run()
    at.segmented_control(key="tensors_join").set_value("stack").run()
    at.selectbox(key="tensors_op").set_value("in-place add").run()
    at.number_input(key="tensors_op_value").set_value(2.5).run()
    at.slider(key="tensors_np_length").set_value(3).run()
    assert not at.exception
    chosen = programs.Choices(
        shape="4x2", seed=42, move=False, index=123, column=-1, join="stack",
        operation="in-place add", op_value=2.5, np_length=3,
    )  # fmt: skip
    assert _program(at) == programs.program(chosen).source().rstrip("\n")
    assert "tensor.add_(2.5)" in _program(at) and "torch.stack(" in _program(at)


def test_a_sample_out_of_range_leaves_the_file_out_with_the_panels_message(at):
    at.number_input(key="tensors_sample").set_value(60_000).run()
    assert not at.exception
    assert any("there is no sample 60,000" in i.value for i in at.info)
    assert not any(c.startswith('"""Tensors:') for c in _codes(at))
