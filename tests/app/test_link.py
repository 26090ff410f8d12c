"""ui.link: a page's view state in its URL; bad or hostile values are refused with a notice."""

import pytest
from streamlit.testing.v1 import AppTest

NOTICE = ":orange[:material/link_off:]"


def _page() -> None:
    import streamlit as st

    from ui import link

    params = [
        link.whole("seed", "t_seed", 0, 100),
        link.number("lr", "t_lr", 1e-5, 1.0),
        link.choice("split", "t_split", {"train": "train", "test": "test"}),
        link.choices("c", "t_classes", {str(i): i for i in range(10)}, most=10),
        link.run_id("run", "t_run"),
        link.text("shape", "t_shape", most=20),
    ]
    link.notify(link.adopt(params))
    st.number_input("Seed", 0, 100, key="t_seed")
    st.session_state.setdefault("t_split", "train")
    st.radio("Split", ["train", "test"], key="t_split")
    st.write(repr({p.key: st.session_state.get(p.key) for p in params}))
    link.keep(params, where=st.container())


def _run(**query) -> AppTest:
    at = AppTest.from_function(_page)
    for name, value in query.items():
        at.query_params[name] = value
    return at.run()


def _notices(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if "From the link" in c.value]


def test_good_values_set_the_widgets_and_are_written_back():
    at = _run(seed="42", lr="0.01", split="test", c=["3", "1"], run="20260101-120000-ab12", shape="2, 3")
    assert not at.exception and not _notices(at)
    assert at.number_input(key="t_seed").value == 42 and at.radio(key="t_split").value == "test"
    assert at.session_state["t_classes"] == [3, 1] and at.session_state["t_run"] == "20260101-120000-ab12"
    assert _query(at, "c") == ["3", "1"] and _query(at, "lr") == ["0.01"]
    at.number_input(key="t_seed").set_value(7).run()
    assert _query(at, "seed") == ["7"] and _query(at, "split") == ["test"]


def _query(at: AppTest, name: str) -> list[str]:
    value = at.query_params[name]
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"seed": "101"}, "seed 101 is out of range (0 to 100)."),
        ({"seed": "-1"}, "seed -1 is out of range"),
        ({"seed": "1e30"}, "seed '1e30' is not a whole number."),
        ({"seed": "9" * 300}, "a value of 300 characters is too long."),
        ({"lr": "nan"}, "lr 'nan' is out of range"),
        ({"lr": "inf"}, "lr 'inf' is out of range"),
        ({"lr": "fast"}, "lr 'fast' is not a number."),
        ({"split": "valid"}, "split 'valid' is not one of train, test."),
        ({"c": ["1", "1"]}, "c names a value twice."),
        ({"c": ["11"]}, "c '11' is not one of 0, 1, 2"),
        ({"c": [str(i) for i in range(12)]}, "c has 12 values; at most 10 are allowed."),
        ({"run": "../../etc/passwd"}, "run '../../etc/passwd' is not a run id (YYYYMMDD-HHMMSS-xxxx)."),
        ({"run": "20260101-120000-ab12/../x"}, "run '20260101-120000-ab12/../…' is not a run id"),
        ({"shape": "x" * 21}, "shape is 21 characters long; at most 20 are allowed."),
        ({"shape": "2\n3"}, "shape holds characters that cannot be shown."),
    ],
)
def test_a_bad_value_is_refused_with_a_notice_and_the_default_kept(query, reason):
    at = _run(**query)
    assert not at.exception and not at.error
    notices = _notices(at)
    assert len(notices) == 1 and notices[0].startswith(f"{NOTICE} From the link: {reason}")
    assert notices[0].endswith(" Showing the default instead.")
    assert at.number_input(key="t_seed").value == 0 and at.radio(key="t_split").value == "train"
    assert "t_lr" not in at.session_state and "t_run" not in at.session_state


def test_a_widget_the_user_changed_is_not_reset_by_the_link():
    at = _run(seed="42")
    at.number_input(key="t_seed").set_value(9).run()
    assert at.number_input(key="t_seed").value == 9 and not _notices(at)


def test_the_copy_link_shows_the_query():
    at = _run(seed="42", split="test")
    code = [c.value for c in at.code]
    assert code and "seed=42" in code[0] and "split=test" in code[0]
