from streamlit.testing.v1 import AppTest

from core.data import PROJECT_ROOT


def test_home_shows_device_and_dataset_status(real_data):
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value.endswith("FashionMNIST Studio")
    text = " ".join(m.value for m in at.markdown)
    assert "CPU" in text
    assert any("FashionMNIST ready" in s.value for s in at.success)
