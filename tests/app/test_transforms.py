"""The Transforms page: before/after previews, one-hot targets, the pipeline's code, the training hand-off."""

import re

import pytest
from streamlit.testing.v1 import AppTest

import core.base.paths
import core.data.fashion
from core.data.fashion import CLASSES, PROJECT_ROOT, load_split
from core.learn.programs import transforms as programs
from tests.app.conftest import answers_shown

PAGE = str(PROJECT_ROOT / "pages" / "Transforms.py")


def _page() -> AppTest:
    return answers_shown(AppTest.from_file(PAGE, default_timeout=60)).run()


def _images(at: AppTest) -> dict[str, str]:
    """caption -> URL of every image; the URL is a hash of the image bytes, so it changes with the pixels."""
    return {img.proto.imgs[0].caption: img.proto.imgs[0].url for img in at.get("image")}


def _add(at: AppTest, name: str) -> AppTest:
    at.selectbox(key="transforms_add").set_value(name)
    return at.button(key="transforms_add_button").click().run()


def _stats(at: AppTest) -> dict[str, dict[str, str]]:
    """ "before"/"after" -> {statistic: shown text}, from the page's only table (one column per tensor)."""
    table = at.dataframe[0].value.set_index("")
    return {column.split(" · ")[0]: table[column].to_dict() for column in table.columns}


def _one_hot_lines(at: AppTest) -> dict[int, list[float]]:
    """label -> printed vector, parsed from the `y = 9 (Ankle boot)  →  tensor([...])` lines."""
    text = next(c.value for c in at.code if c.value.startswith("y = "))
    found = re.findall(r"y = (\d+) \(.*?\)  →  tensor\(\[(.*?)\]\)", text)
    return {int(label): [float(v) for v in values.split(",")] for label, values in found}


def _code(at: AppTest) -> str:
    return next(c.value for c in at.code if "transforms.Compose([" in c.value)


def test_page_shows_samples_before_and_after_and_their_one_hot_vectors(real_data):
    at = _page()
    assert not at.exception and not at.error
    assert at.title[0].value.endswith(" Transforms")
    _, labels = load_split("train")
    first, second = int(labels[0]), int(labels[1])
    captions = list(_images(at))
    assert f"#0 · {CLASSES[first]}" in captions and f"#1 · {CLASSES[second]}" in captions  # before
    assert "#0 · tensor 1×28×28" in captions and "#1 · tensor 1×28×28" in captions  # after ToTensor
    assert [c for c in captions if c.isdigit()] == [str(i) for i in range(1, 9)]  # the random draws
    vectors = _one_hot_lines(at)
    assert set(vectors) == {first, second}
    for label, vector in vectors.items():
        assert len(vector) == 10 and vector[label] == 1.0 and sum(vector) == 1.0
    stats = _stats(at)
    assert stats["before"]["shape"] == stats["after"]["shape"] == "(1, 28, 28)"
    assert stats["after"]["dtype"] == "float32" and stats["after"]["min"] == "0.0000"
    assert stats["after"]["mean"] == stats["before"]["mean"]  # ToTensor alone changes nothing but the type
    assert "transforms.ToTensor()," in _code(at)


def test_rotation_and_flip_change_the_after_image_but_not_the_before(real_data):
    at = _page()
    at.number_input(key="transforms_seed").set_value(1).run()  # seed 0 happens to draw an angle near 0°
    before_images = _images(at)
    before_stats = _stats(at)
    _add(at, "RandomRotation")
    _add(at, "RandomHorizontalFlip")
    at.slider(key="transforms_s2_p").set_value(1.0)
    at.slider(key="transforms_s1_degrees").set_value(40.0).run()
    assert not at.exception and not at.error
    images, stats = _images(at), _stats(at)
    before_captions = [c for c in before_images if not c.isdigit() and "tensor" not in c]
    assert all(images[c] == before_images[c] for c in before_captions)  # the Dataset's images stay
    assert images["#0 · tensor 1×28×28"] != before_images["#0 · tensor 1×28×28"]
    assert stats["before"] == before_stats["before"]
    assert (stats["after"]["mean"], stats["after"]["std"]) != (
        before_stats["after"]["mean"],
        before_stats["after"]["std"],
    )
    draws = {url for caption, url in images.items() if caption.isdigit()}
    assert len(draws) > 1  # a random rotation gives varied draws of one sample
    code = _code(at)
    assert (
        "transforms.RandomRotation(degrees=40.0)," in code
        and "transforms.RandomHorizontalFlip(p=1.0)," in code
    )
    # The same seed redraws the same images; another seed draws others.
    assert _images(at.run()) == images
    at.number_input(key="transforms_seed").set_value(2).run()
    assert _images(at)["#0 · tensor 1×28×28"] != images["#0 · tensor 1×28×28"]


def test_normalize_before_to_tensor_is_an_error_not_a_traceback(real_data):
    at = _add(_page(), "Normalize")
    assert not at.error and "transforms.Normalize(mean=(0.286,), std=(0.353,))," in _code(at)
    assert float(_stats(at)["after"]["min"]) < 0  # normalised pixels go below 0
    at.button(key="transforms_up_1").click().run()
    assert not at.exception
    assert any(
        "Normalize, works on tensors but gets a PIL image: move it below ToTensor" in e.value
        for e in at.error
    )
    captions = list(_images(at))
    assert "#0 · Ankle boot" in captions and not any("tensor" in c for c in captions)  # before still shown
    assert list(_stats(at)) == ["before"]
    assert not any("transforms.Compose([" in c.value for c in at.code)  # no code that would fail to run
    assert any("Fix the pipeline above to see the code you would write" in i.value for i in at.info)


def test_a_bad_parameter_shows_an_error_and_the_page_keeps_working(real_data):
    at = _add(_page(), "GaussianBlur")
    at.number_input(key="transforms_s1_kernel_size").set_value(4).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["GaussianBlur: kernel_size must be odd (3, 5, 7, …), not 4"]
    at.number_input(key="transforms_s1_kernel_size").set_value(5).run()
    assert not at.exception and not at.error
    assert "transforms.GaussianBlur(kernel_size=5, sigma=(0.1, 2.0))," in _code(at)


def test_without_to_tensor_the_pil_output_is_shown(real_data):
    at = _add(_page(), "Resize")
    at.button(key="transforms_remove_0").click().run()
    assert not at.exception and not at.error
    assert "#0 · PIL 32×32" in _images(at)
    assert _stats(at)["after"]["shape"] == "(1, 32, 32)"
    assert any("no ToTensor" in c.value for c in at.caption)


def test_pipeline_is_handed_to_training_with_what_is_left_out(real_data):
    at = _page()
    at.button(key="transforms_preset_Augmentation").click().run()
    at = _add(at, "ColorJitter")
    assert "train_augment" not in at.session_state
    lines = [m.value for m in at.markdown]
    assert (
        ":gray[:material/block:] ColorJitter → not used in training "
        "(training does not change brightness or contrast)" in lines
    )
    assert ":green[:material/check_circle:] RandomRotation → rotate up to ±10°" in lines
    at.button(key="transforms_use").click().run()
    assert not at.exception
    assert at.session_state["train_augment"] == {
        "hflip": 0.5,
        "rotate": 10.0,
        "translate": 0.0,
        "scale": 0.0,
        "erase": 0.25,
    }
    success = at.success[0].value
    assert "will use this augmentation: flip 50% · rotate ±10° · erase 25%." in success  # words, not a repr
    assert "Not used: ColorJitter" in success
    at.slider(key="transforms_s2_degrees").set_value(30.0).run()  # the preset's rotation step
    assert not at.success and "earlier augmentation" in at.info[-1].value
    assert at.session_state["train_augment"]["rotate"] == 10.0  # kept until the button is pressed again


def test_missing_dataset_shows_the_fix_instead_of_the_page(tmp_path, monkeypatch):
    monkeypatch.setattr(core.base.paths, "DATA_DIR", tmp_path)  # raw_dir() reads it at call time
    at = _page()
    assert not at.exception
    assert [e.value for e in at.error] == [core.data.fashion.dataset_status().message]
    assert "make data" in at.error[0].value and not at.get("image")


def _linked(**query) -> AppTest:
    at = answers_shown(AppTest.from_file(PAGE, default_timeout=60))
    for name, value in query.items():
        at.query_params[name] = value
    return at.run()


def _notices(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if "From the link" in c.value]


def test_a_link_restores_the_pipeline_and_samples_and_the_view_is_written_back(real_data):
    steps = ["RandomRotation:degrees=30", "ToTensor", "RandomErasing:p=0.5,scale=0.05..0.2,value=0"]
    at = _linked(step=steps, sample="12", samples="3", seed="99")
    assert not at.exception and not at.error and not _notices(at)
    code = _code(at)
    assert "RandomRotation(degrees=30" in code and "RandomErasing(p=0.5, scale=(0.05, 0.2)" in code
    assert at.number_input(key="transforms_index").value == 12
    assert at.number_input(key="transforms_seed").value == 99
    assert "#14 · tensor 1×28×28" in _images(at)  # three samples from #12
    at.number_input(key="transforms_seed").set_value(5).run()
    assert at.query_params["seed"] == "5" and at.query_params["sample"] == "12"
    assert at.query_params["step"][1] == "ToTensor" and at.query_params["step"][0].startswith(steps[0])


def test_the_first_sample_and_the_pipeline_survive_a_visit_to_another_page(real_data):
    at = (
        answers_shown(AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60))
        .run()
        .switch_page(PAGE)
        .run()
    )
    at.number_input(key="transforms_index").set_value(7).run()
    _add(at, "RandomRotation")
    rotation = next(s for s in at.slider if s.key and s.key.endswith("_degrees"))
    rotation.set_value(40.0).run()
    at.switch_page(str(PROJECT_ROOT / "pages" / "Tensors.py")).run()
    at.run()  # a second run there: Streamlit drops the state of widgets the last run did not draw
    at.query_params.clear()  # as in the browser, where a page link leaves the old page's query behind
    at.switch_page(PAGE).run()
    assert not at.exception
    assert at.number_input(key="transforms_index").value == 7
    assert "RandomRotation(degrees=40" in _code(at)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"step": ["ToTensor", "Lambda"]}, "step 'Lambda' is not one of the transforms here."),
        ({"step": ["__import__('os')"]}, "is not one of the transforms here."),
        ({"step": ["RandomRotation:degrees=1e9"]}, "RandomRotation: degrees must be between"),
        ({"step": ["RandomRotation:degrees=nan"]}, "RandomRotation: degrees must be between"),
        ({"step": ["RandomRotation:evil=1"]}, "RandomRotation has no parameter(s) ['evil']"),
        ({"step": ["ToTensor"] * 13}, "the pipeline has 13 steps; at most 12 are allowed."),
        ({"step": ["RandomRotation:degrees=" + "1" * 300]}, "a step of 323 characters is too long."),
        ({"sample": "60000"}, "sample 60,000 is out of range"),
        ({"samples": "9"}, "samples 9 is out of range (1 to 4)."),
        ({"seed": "-1"}, "seed -1 is out of range"),
    ],
)
def test_a_bad_link_value_is_refused_with_a_notice(real_data, query, reason):
    at = _linked(**query)
    assert not at.exception and not at.error
    notices = _notices(at)
    assert len(notices) == 1 and reason in notices[0]
    assert "transforms.ToTensor()" in _code(at) and "#0 · tensor 1×28×28" in _images(at)


def test_reorder_buttons_are_named_by_text_and_random_resized_crop_only_zooms_in(real_data):
    at = _page()
    _add(at, "RandomResizedCrop")
    assert {b.label for b in at.button if b.key and b.key.startswith("transforms_up_")} == {"↑"}
    lines = [m.value for m in at.markdown if "RandomResizedCrop →" in m.value]
    assert lines and "zoom in up to" in lines[0] and "±" not in lines[0]


def test_the_log_histogram_ticks_only_powers_of_ten(real_data):
    at = _page()
    spec = next(c.proto.spec for c in at.get("plotly_chart") if "Pixel values" in c.proto.spec)
    assert '"dtick":1' in spec.replace(" ", "")


def test_the_page_ends_with_the_code_you_would_write_from_its_pipeline_samples_and_seed(real_data):
    at = _page()
    at.button(key="transforms_preset_Augmentation").click().run()
    at.number_input(key="transforms_index").set_value(10).run()
    at.number_input(key="transforms_count").set_value(3).run()
    at.number_input(key="transforms_seed").set_value(99).run()
    assert not at.exception and not at.error
    steps = at.session_state["transforms_pipeline"]
    assert [name for name, _ in steps] == [
        "RandomHorizontalFlip",
        "RandomRotation",
        "ToTensor",
        "RandomErasing",
    ]
    assert at.subheader[-1].value.endswith("The code you would write")
    expected = (
        programs.program(steps, [10, 11, 12], 99).source().rstrip("\n")
    )  # st.code drops the last newline
    assert at.code[-1].value == expected
    assert "torch.manual_seed(99)" in expected and "for idx in [10, 11, 12]:" in expected
    anchors = {h.value: h.proto.anchor for h in at.subheader}
    assert anchors["Pipeline"] == "pipeline" and anchors["Tensor statistics"] == "tensor-statistics"
    links = next(m.value for m in at.markdown if "makes [pipeline](#pipeline)" in m.value)
    assert "(#tensor-statistics)" in links and "(#target-transform)" in links
