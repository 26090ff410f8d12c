"""The Autograd page: grad_fn names, the graph, gradients beside finite differences, the freed-graph
error explained, accumulation with retain_graph, resetting, stopping tracking, more on computational graphs,
vᵀ·J explained, and the file the page's controls make."""

import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.data.fashion import PROJECT_ROOT
from core.learn import autograd as ag
from core.learn import graphs
from core.learn.program import ANCHOR
from core.learn.programs import autograd as programs
from tests.app.conftest import answers_shown

PAGE = str(PROJECT_ROOT / "pages" / "Autograd.py")


@pytest.fixture
def at() -> AppTest:
    page = (
        answers_shown(AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60))
        .run()
        .switch_page(PAGE)
        .run()
    )
    assert not page.exception
    return page


def _codes(at: AppTest) -> list[str]:
    return [block.value for block in at.code]


def _backward(at: AppTest) -> AppTest:
    at.button(key="autograd_backward").click().run()
    assert not at.exception
    return at


def test_the_page_names_the_grad_fns_and_draws_the_graph(at):
    names = "Gradient function for z = AddBackward0\nGradient function for loss = "
    assert names + "BinaryCrossEntropyWithLogitsBackward0" in _codes(at)
    dot = at.get("graphviz_chart")[0].proto.spec
    for label in (
        "BinaryCrossEntropyWithLogitsBackward0",
        "MmBackward0",
        "w  (AccumulateGrad)",
        "b  (AccumulateGrad)",
    ):
        assert f'label="{label}"' in dot
    assert any("Automatic Differentiation" in c.value for c in at.caption)


def test_backward_shows_gradients_that_agree_with_finite_differences(at):
    at = _backward(at)
    ex = ag.example(0)
    ag.backward(ex)
    fd_w, fd_b = ag.finite_differences(ex)
    codes = _codes(at)
    assert str(ex.w.grad) in codes and str(ex.b.grad) in codes
    assert str(fd_w.float()) in codes and str(fd_b.float()) in codes
    assert any("they agree" in s.value for s in at.success)


def test_a_second_backward_shows_the_explained_error_then_retain_graph_accumulates(at):
    at = _backward(_backward(at))
    assert at.error[0].value.startswith("RuntimeError: Trying to backward through the graph a second time")
    assert any("To call it twice" in m.value for m in at.markdown)
    at.button(key="autograd_reset").click().run()
    at.toggle(key="autograd_retain").set_value(True).run()
    at = _backward(_backward(at))
    assert not at.error
    assert any("has run **2** times" in m.value for m in at.markdown)
    ex = ag.example(0)
    ag.backward(ex)
    assert str(2 * ex.w.grad) in _codes(at)  # the numbers doubled
    assert any("holds 2 of them" in s.value for s in at.success)


def test_changing_the_seed_builds_a_new_example(at):
    at.number_input(key="autograd_seed").set_value(9).run()
    at.slider(key="autograd_n_in").set_value(2).run()
    at = _backward(at)
    ex = ag.example(9, 2, 3)
    ag.backward(ex)
    assert str(ex.w.grad) in _codes(at) and ex.w.grad.shape == torch.Size([2, 3])


def test_stopping_tracking_shows_requires_grad_turning_false(at):
    codes = _codes(at)
    no_grad = next(i for i, code in enumerate(codes) if "with torch.no_grad():" in code)
    assert codes[no_grad + 1] == "True\nFalse"


def test_the_real_model_section_draws_the_pixel_gradient_and_refuses_a_bad_index(real_data, run_store):
    at = (
        answers_shown(AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60))
        .run()
        .switch_page(PAGE)
        .run()
    )
    captions = [c for image in at.image for c in image.captions]
    assert captions == ["Test image #0: Ankle boot", "−X.grad over the image"]
    assert any("X.grad  # (1, 1, 28, 28)" in block.value for block in at.code)
    at.number_input(key="autograd_sample").set_value(10_000).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["there is no test image 10,000: the test split holds 0 to 9,999"]


def test_the_jacobian_section_shows_the_tutorials_print_out_and_accumulates_one_click_at_a_time(at):
    output = ag.jacobian_snippet("ones").output.rstrip("\n")
    assert output in _codes(at)
    assert "None" in _codes(at)  # inp.grad before any call
    first = ag.vjp_by_hand(ag.jacobian_example("ones"))
    for calls in (1, 2):
        at.button(key="autograd_jac_backward").click().run()
        assert not at.exception
        assert str(calls * first) in _codes(at)
        assert any(c.value.startswith(f"`inp.grad` after {calls} call") for c in at.caption)
        assert any(s.value.startswith("Equal: each `backward(v)` added") for s in at.success)
    at.button(key="autograd_jac_zero").click().run()
    assert str(torch.zeros(4, 5)) in _codes(at)
    assert any(c.value.startswith("`inp.grad` after 0 calls") for c in at.caption)
    at.segmented_control(key="autograd_jac_v").set_value("random").run()
    random_v = ag.jacobian_example("random")
    assert ag.jacobian_snippet("random").output.rstrip("\n") in _codes(at)
    at.button(key="autograd_jac_backward").click().run()
    assert str(ag.vjp_by_hand(random_v)) in _codes(at)
    assert any("shape (5, 4, 4, 5), 400 numbers" in c.value for c in at.caption)


def test_leaves_and_accumulate_grad_are_explained_beside_pytorchs_objects(at):
    assert any("A **leaf** is a tensor you made yourself" in m.value for m in at.markdown)
    snippet = graphs.leaf_objects(ag.example(0))
    codes = _codes(at)
    shown = codes[codes.index(snippet.code.rstrip("\n")) + 1]
    assert shown.startswith("True True False False\n((<SqueezeBackward4 object at 0x")
    assert "<AccumulateGrad object at 0x" in shown and shown.endswith("> True")


def test_more_on_graphs_shows_two_passes_two_graphs_and_control_flow(at):
    assert any("rebuilt from scratch" in m.value for m in at.markdown)
    assert graphs.two_passes(ag.example(0), "relu").snippet.output.rstrip("\n") in _codes(at)
    charts = [chart.proto.spec for chart in at.get("graphviz_chart")]
    assert len(charts) == 4  # the example's graph, pass 1's, pass 2's, and x's
    assert "ReluBackward0" not in charts[1] and "ReluBackward0" in charts[2]
    at.segmented_control(key="autograd_second").set_value("double").run()
    assert not at.exception
    charts = [chart.proto.spec for chart in at.get("graphviz_chart")]
    assert "MulBackward0" not in charts[1] and "MulBackward0" in charts[2]
    assert any("`losses[0].grad_fn is losses[1].grad_fn` is `False`" in c.value for c in at.caption)


def test_a_non_leafs_grad_shows_pytorchs_warning_until_retain_grad(at):
    expected = graphs.leaf_grads(ag.example(0), retain=False).warning
    assert [w.value for w in at.warning] == [f"UserWarning: {expected}"]
    assert "not a leaf Tensor is being accessed" in expected
    at.toggle(key="autograd_retain_grad").set_value(True).run()
    assert not at.exception and not at.warning
    result = graphs.leaf_grads(ag.example(0), retain=True)
    assert f"False {result.z_grad}" in _codes(at)
    assert any(s.value.startswith("`z.grad` against d loss / d z written out") for s in at.success)


def test_requires_grad_later_puts_x_in_the_graph_and_gives_it_a_gradient(at):
    later = graphs.requires_grad_later(ag.example(0), True)
    assert later.snippet.output.rstrip("\n") in _codes(at)
    assert 'label="x  (AccumulateGrad)"' in at.get("graphviz_chart")[3].proto.spec
    assert any(s.value.startswith("`x.grad` against `w @ (torch.sigmoid(z) - y) / 3`") for s in at.success)
    at.toggle(key="autograd_later").set_value(False).run()
    assert not at.exception
    assert "x  (AccumulateGrad)" not in at.get("graphviz_chart")[3].proto.spec
    assert "False\nNone" in _codes(at)


def test_the_jacobian_section_says_what_v_transposed_j_is_and_checks_it(at):
    assert any("**vᵀ·J** weights those derivatives by `v`" in m.value for m in at.markdown)
    assert any("shape (5, 4, 4, 5)" in m.value for m in at.markdown)
    assert ag.vjp_snippet("ones").output.rstrip("\n") in _codes(at)


def _program(at: AppTest) -> str:
    return next(c for c in _codes(at) if c.startswith('"""Automatic Differentiation'))


def test_the_page_ends_with_the_file_its_controls_make(at):
    page = dict(how="no_grad", second="relu", retain=False, later=True, v_kind="ones")
    assert _program(at) == programs.program(0, 5, 3, **page).source().rstrip("\n")
    anchors = [s.proto.anchor for s in at.subheader]
    assert anchors[-1] == ANCHOR
    assert all(piece.anchor in anchors for piece in programs.program(0, 5, 3).pieces)
    at.number_input(key="autograd_seed").set_value(7).run()
    at.slider(key="autograd_n_out").set_value(2).run()
    at.segmented_control(key="ag_how").set_value("detach").run()
    at.toggle(key="autograd_retain_grad").set_value(True).run()
    at.segmented_control(key="autograd_jac_v").set_value("random").run()
    assert not at.exception
    page |= dict(how="detach", retain=True, v_kind="random")
    assert _program(at) == programs.program(7, 5, 2, **page).source().rstrip("\n")
    assert "z.retain_grad()" in _program(at) and "manual_seed(7)" in _program(at)


def test_the_file_at_the_end_says_it_needs_only_torch(at):
    said = [m.value for m in at.markdown if "prints what this page shows" in m.value]
    assert said and "(it needs torch)." in said[0] and "FashionMNIST" not in said[0]
