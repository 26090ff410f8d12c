"""The Train page's form: what is typed is what trains, Start alone starts, and a refusal says why."""

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block, Expander

from core import runs
from core.data.fashion import PROJECT_ROOT
from core.training.config import PRESETS
from ui.train.fields import parse_number

PAGE = str(PROJECT_ROOT / "pages" / "Train.py")


@pytest.fixture
def started(monkeypatch, run_store):
    """Every config Start hands to core.runs, without starting a worker."""
    configs = []

    def fake_start(config, **_kwargs):
        configs.append(config)
        return "20260101-000000-f00d"

    monkeypatch.setattr(runs, "start", fake_start)
    return configs


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60).run()


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def _sections(node, section: str = "") -> dict[str, str]:
    """Each keyed widget of the page and the label of the expander it sits in ("" for none)."""
    found = {}
    for child in getattr(node, "children", {}).values():
        if isinstance(child, Expander):
            found |= _sections(child, child.label)
        elif isinstance(child, Block):
            found |= _sections(child, section)
        elif getattr(child, "key", None):
            found[child.key] = section
    return found


def _expanded(at: AppTest, label: str) -> bool:
    (section,) = [e for e in at.expander if e.label == label]
    return section.proto.expanded


def test_a_cleared_cap_trains_on_all_batches(started):
    at = _page()
    at.text_input(key="train_limit_batches").input("100").run()
    at.text_input(key="train_limit_batches").input("").run()  # select all, Delete, Tab
    assert at.text_input(key="train_limit_batches").value == ""
    at.button(key="train_start").click().run()
    assert not at.exception and not _errors(at)
    assert [c.limit_batches for c in started] == [None]


def test_typing_in_a_field_never_starts_a_run(started):
    at = _page()
    for key, text in [("train_epochs", "2"), ("train_seed", "7"), ("train_limit_batches", "20")]:
        at.text_input(key=key).input(text).run()  # Enter applies the value and nothing else
    assert not at.exception and started == []
    at.button(key="train_start").click().run()
    assert [(c.epochs, c.seed, c.limit_batches) for c in started] == [(2, 7, 20)]


def test_values_are_never_changed_silently_start_lists_every_problem(started):
    at = _page()
    at.text_input(key="train_epochs").input("1.5")
    at.text_input(key="train_seed").input("1e30")
    at.text_input(key="train_hidden").input("5000").run()  # inside the collapsed "Advanced"
    assert at.text_input(key="train_epochs").value == "1.5"  # as typed
    at.button(key="train_start").click().run()
    assert not at.exception and started == []
    (message,) = _errors(at)  # one message, every problem in it
    assert message.startswith("Not started. Fix these first:")
    assert "Epochs must be a whole number, not 1.5" in message
    assert "Seed must be a whole number between 0 and 4294967295, not 1e30" in message
    assert "Hidden units must be a whole number between 1 and" in message and "not 5000" in message
    assert _expanded(at, "Advanced")  # opened to show the fields

    at.text_input(key="train_epochs").input("2")
    at.text_input(key="train_seed").input("1").run()  # the list follows the fixes
    (message,) = _errors(at)
    assert message.startswith("Not started. Fix this first:") and "Hidden units" in message
    at.text_input(key="train_hidden").input("").run()
    assert not _errors(at) and started == []
    at.button(key="train_start").click().run()
    assert [(c.epochs, c.seed, c.hidden) for c in started] == [(2, 1, None)]


@pytest.mark.parametrize("digits", [400, 5000])
def test_hundreds_of_digits_typed_into_a_field_are_a_problem_listed_not_a_crash(started, digits):
    at = _page()
    for key in ("train_epochs", "train_seed", "train_dropout", "train_limit_batches"):
        at.text_input(key=key).input("9" * digits)
    at.run().button(key="train_start").click().run()
    assert not at.exception and started == []
    (message,) = _errors(at)
    assert message.count(f"({digits} characters)") == 4 and len(message) < 1000


def test_parse_number_keeps_what_is_typed_or_says_why_not():
    assert parse_number("epochs", " 3 ") == 3
    assert parse_number("epochs", "1e2") == 100
    assert parse_number("dropout", "0.25") == 0.25
    assert parse_number("limit_batches", "") is None
    with pytest.raises(ValueError, match="Epochs is empty"):
        parse_number("epochs", "")
    with pytest.raises(ValueError, match="'ten' is not a number"):
        parse_number("epochs", "ten")
    with pytest.raises(ValueError, match="Dropout must be at least 0 and below 1, not nan"):
        parse_number("dropout", "nan")


def test_the_preset_is_highlighted_only_while_the_fields_hold_it(run_store):
    at = _page()
    (preset,) = at.button_group
    assert preset.value == "tutorial" and preset.options == ["tutorial", "recommended"]
    assert any(c.value.startswith("the quickstart as is") for c in at.caption)
    at.text_input(key="train_epochs").input("2").run()
    assert at.button_group[0].value == "custom" and at.button_group[0].options[-1] == "custom"
    assert not any(c.value.startswith("the quickstart as is") for c in at.caption)
    assert any(c.value.startswith("Your own settings") for c in at.caption)
    at.text_input(key="train_epochs").input(str(PRESETS["tutorial"].epochs)).run()
    assert at.button_group[0].value == "tutorial"


MAIN = ["train_model", "train_epochs", "train_batch_size", "train_lr", "train_optimizer"]
ADVANCED = ["train_limit_batches", "train_hidden", "train_dropout", "train_lr_schedule", "train_momentum",
            "train_weight_decay", "train_seed", "train_device", "train_processes",
            "train_log_every"]  # fmt: skip


def test_the_knobs_that_matter_are_in_view_and_the_rest_under_a_closed_advanced(run_store):
    at = _page()
    assert not at.exception
    sections = _sections(at.main)
    assert {key: sections[key] for key in MAIN} == dict.fromkeys(MAIN, "")  # in no expander
    assert {key: sections[key] for key in ADVANCED} == dict.fromkeys(ADVANCED, "Advanced")
    assert sections["train_aug_hflip"] == "Augmentation (training images only)"
    assert sections["train_start"] == ""
    assert not _expanded(at, "Advanced") and not _expanded(at, "Augmentation (training images only)")


def test_a_preset_that_sets_an_advanced_field_opens_advanced_and_the_tutorial_leaves_it(run_store):
    at = _page()
    at.button_group[0].set_value("tutorial").run()  # the highlighted one again: nothing changes
    assert not _expanded(at, "Advanced")
    at.button_group[0].set_value("recommended").run()  # cosine schedule, weight decay, dropout
    assert not at.exception
    assert at.button_group[0].value == "recommended"
    assert _expanded(at, "Advanced")
    assert at.selectbox(key="train_lr_schedule").value == "cosine"
    at.button_group[0].set_value("tutorial").run()  # every advanced field back to the tutorial's
    assert at.selectbox(key="train_lr_schedule").value == "constant"
    assert _expanded(at, "Advanced")  # not closed under the user's eyes


def test_start_opens_advanced_when_a_field_there_is_wrong_and_not_for_epochs(started):
    at = _page()
    at.text_input(key="train_epochs").input("0").run()
    at.button(key="train_start").click().run()
    assert "Epochs must be" in _errors(at)[0] and not _expanded(at, "Advanced")
    at.text_input(key="train_epochs").input("1")
    at.text_input(key="train_seed").input("-1").run()
    at.button(key="train_start").click().run()
    assert "Seed must be" in _errors(at)[0] and _expanded(at, "Advanced")
    assert started == []


def test_the_transforms_hand_off_shows_in_the_preset_and_an_open_augmentation_section(run_store):
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["train_augment"] = {"hflip": 0.5, "rotate": 10.0}  # as ui.learn.transforms hands it over
    at.run()
    assert not at.exception
    (preset,) = at.button_group
    assert preset.value == "custom"
    assert preset.options == ["tutorial", "recommended", "custom (augmentation from Transforms)"]  # as shown
    assert "The tutorial preset with augmentation from the Transforms page: flip 50% · rotate ±10°." in [
        c.value for c in at.caption
    ]
    assert not any(c.value.startswith("the quickstart as is") for c in at.caption)
    assert _expanded(at, "Augmentation (training images only)")
    (section,) = [e for e in at.expander if e.label == "Augmentation (training images only)"]
    assert section.caption[0].value == ":material/input: From the Transforms page: flip 50% · rotate ±10°."
    assert at.slider(key="train_aug_hflip").value == 0.5 and at.slider(key="train_aug_rotate").value == 10

    at.button_group[0].set_value("recommended").run()  # a preset keeps the hand-off
    assert at.button_group[0].options[-1] == "custom (augmentation from Transforms)"
    assert any(
        c.value.startswith("The recommended preset with augmentation from the Transforms") for c in at.caption
    )
    at.slider(key="train_aug_rotate").set_value(20.0).run()  # changed here: no longer the Transforms page's
    assert at.button_group[0].options[-1] == "custom"
    assert not any("From the Transforms page" in c.value for c in at.caption)
    at.slider(key="train_aug_hflip").set_value(0.0)
    at.slider(key="train_aug_rotate").set_value(0.0).run()
    assert at.button_group[0].value == "recommended"  # no augmentation: the preset as is
