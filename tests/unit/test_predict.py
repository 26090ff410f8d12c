"""core.model.predict: uploads become FashionMNIST-like 28x28 inputs; bad uploads become BadImage."""

import base64
import io
import os
import re
import struct
import subprocess
import sys
import threading
import time
import warnings
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from core.base.errors import BadImage
from core.data.fashion import CLASSES, PROJECT_ROOT, load_split
from core.model.networks import build_model
from core.model.predict import (
    MAX_SIDE,
    Prediction,
    Prepared,
    load_data_url,
    load_image,
    predict,
    prepare,
    to_model_input,
)

N_SAMPLES = 200  # test images pushed through the whole upload path


# ---------- helpers: real files written with Pillow ----------


def _save(image: Image.Image, path: Path, fmt: str | None = None, **params) -> Path:
    image.save(path, fmt, **params)
    return path


def _trousers(canvas: Image.Image, left: int, top: int, width: int, height: int, fill) -> None:
    """Two legs joined by a waistband: taller than wide, like FashionMNIST's Trouser."""
    draw = ImageDraw.Draw(canvas)
    waist = height // 6
    leg = width * 9 // 20
    draw.rectangle((left, top, left + width, top + waist), fill=fill)
    draw.polygon(
        [(left, top), (left + leg, top), (left + leg, top + height), (left + leg // 6, top + height)],
        fill=fill,
    )
    right = left + width
    draw.polygon(
        [(right - leg, top), (right, top), (right - leg // 6, top + height), (right - leg, top + height)],
        fill=fill,
    )


def _boot(size=(300, 200), fill=(30, 30, 30), bg=(255, 255, 255)) -> Image.Image:
    """An asymmetric L shape (a boot seen from the side): any rotation or mirror is visible."""
    image = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 20, 110, 170), fill=fill)  # shaft
    draw.rectangle((40, 130, 260, 170), fill=fill)  # foot, pointing right
    return image


def _png_with_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width x height and whose pixel data is not even a zlib stream."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    idat = b"these bytes are no zlib stream"
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _sample_image(pixels: torch.Tensor) -> Image.Image:
    return Image.frombytes("L", (28, 28), pixels.contiguous().numpy().tobytes())


def _bbox(x: torch.Tensor, threshold: float = 0.2) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) inclusive of the pixels above threshold in a (1, 1, 28, 28) input."""
    rows = (x[0, 0] > threshold).any(1).nonzero().flatten()
    cols = (x[0, 0] > threshold).any(0).nonzero().flatten()
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def _assert_valid(x: torch.Tensor) -> None:
    assert x.shape == (1, 1, 28, 28)
    assert x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def _assert_visible_item(x: torch.Tensor) -> None:
    _assert_valid(x)
    lit = float((x > 0.5).float().mean())
    assert float(x.max()) > 0.9, "the item should be light"
    assert 0.05 < lit < 0.9, f"{lit:.0%} of the pixels are lit: the item is lost or the background is lit"
    assert float(x[0, 0, :, 0].max()) < 0.1 or float(x[0, 0, 0, :].max()) < 0.1, "no dark margin at all"


# ---------- fixtures ----------


@pytest.fixture(scope="module")
def fashion(real_data):
    return load_split("train"), load_split("test")


@pytest.fixture(scope="module")
def trained(fashion):
    """A small tutorial-style MLP, trained briefly: good enough (~80%) to tell a pipeline break."""
    (images, labels), _ = fashion
    torch.manual_seed(0)
    model = build_model("mlp", hidden=128)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for start in range(0, 20_000, 256):
        x = images[start : start + 256].unsqueeze(1).float() / 255  # (B, 1, 28, 28)
        loss = torch.nn.functional.cross_entropy(model(x), labels[start : start + 256])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def _direct_predictions(model, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(images.unsqueeze(1).float() / 255).argmax(1)


# ---------- photos ----------


def test_product_photo_becomes_centred_light_item_on_black(tmp_path):
    photo = Image.new("RGB", (1200, 900), (255, 255, 255))
    _trousers(photo, left=760, top=120, width=260, height=640, fill=(40, 45, 70))
    path = _save(photo, tmp_path / "photo.jpg", quality=90)

    prepared = prepare(path)
    x = prepared.tensor

    _assert_valid(x)
    assert prepared.inverted
    assert prepared.original.size == (1200, 900)
    left, top, right, bottom = prepared.crop_box
    assert abs(left - 760) <= 8 and abs(top - 120) <= 8 and abs(right - 1021) <= 8 and abs(bottom - 761) <= 8
    top, bottom, left, right = _bbox(x)
    assert (top, bottom) == (0, 27), "the longest side should span the whole 28 pixels"
    assert abs((left + right) / 2 - 13.5) <= 1, "the item should be centred"
    assert float(x[0, 0, :, :3].max()) < 0.05 and float(x[0, 0, :, -3:].max()) < 0.05, "margins are black"
    assert float(x[0, 0, 5:25, left + 1 : left + 4].mean()) > 0.8, "the dark trouser leg should become light"


def test_big_jpeg_is_decoded_reduced_and_boxed_in_its_own_pixels():
    photo = Image.new("RGB", (8000, 4500), (255, 255, 255))
    _trousers(photo, left=5000, top=600, width=1200, height=3200, fill=(40, 40, 40))
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=85)

    start = time.perf_counter()
    prepared = prepare(buf.getvalue())
    assert time.perf_counter() - start < 0.5  # about 0.06 s; decoding all 36 MP takes longer

    assert prepared.original.size == (2000, 1125), "JPEG draft mode quarters both sides (to >= DECODE_SIDE)"
    left, top, right, bottom = (v * 4 for v in prepared.crop_box)  # back in the photo's own pixels
    assert (
        abs(left - 5000) <= 16
        and abs(top - 600) <= 16
        and abs(right - 6200) <= 16
        and abs(bottom - 3800) <= 16
    )
    assert _bbox(prepared.tensor)[:2] == (0, 27)


def test_damaged_exif_does_not_refuse_the_photo(tmp_path):
    exif = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00\x12\x01\x03\x00" + b"\xff" * 40  # cut short
    path = _save(_boot(), tmp_path / "bad_exif.jpg", quality=95, exif=exif)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # Pillow notices the damage and warns: none may reach stderr
        prepared = prepare(path)
    assert not caught, [str(w.message) for w in caught]
    assert prepared.original.size == (300, 200)
    _assert_visible_item(prepared.tensor)


def test_damaged_exif_prints_nothing_from_the_command_line(tmp_path, trained):
    exif = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00\x12\x01\x03\x00" + b"\xff" * 40
    image = _save(_boot(), tmp_path / "bad_exif.jpg", quality=95, exif=exif)
    checkpoint = tmp_path / "model.pth"
    torch.save(trained.state_dict(), checkpoint)
    done = subprocess.run(
        [sys.executable, "-m", "core", "predict", str(image), "--checkpoint", str(checkpoint)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.startswith(f"{image}: ")
    assert not done.stderr


def test_odd_leftover_pixel_goes_left_as_in_fashion_mnist(tmp_path):
    # FashionMNIST's tall items with an odd total margin have the extra column on the left (3216 of
    # 3222 in the test split); putting it on the right shifts every such item by a pixel.
    image = Image.new("L", (200, 200), 255)
    image.paste(0, (50, 60, 59, 88))  # 9 wide, 28 tall: kept at its size, 19 columns of margin
    top, bottom, left, right = _bbox(prepare(_save(image, tmp_path / "bar.png")).tensor, threshold=0.5)
    assert (top, bottom, left, right) == (0, 27, 10, 18)


def test_specks_and_faint_noise_do_not_widen_the_crop(tmp_path):
    photo = Image.effect_noise((800, 600), 4).point(lambda v: v + 118)  # grey 246, +-4 levels of noise
    _trousers(photo, left=300, top=150, width=150, height=380, fill=20)
    for i in range(40):  # isolated dust specks all over the frame
        photo.putpixel((10 + i * 19, 20 + (i * 37) % 560), 0)
    prepared = prepare(_save(photo, tmp_path / "specks.png"))

    left, top, right, bottom = prepared.crop_box
    assert left >= 290 and top >= 140 and right <= 460 and bottom <= 540
    assert right - left >= 140 and bottom - top >= 370


@pytest.mark.parametrize(
    ("orientation", "stored_as"), [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)]
)
def test_exif_orientation_is_applied(tmp_path, orientation, stored_as):
    upright = _boot()
    sideways = upright.transpose(stored_as)  # the pixels as a phone stores them
    exif = Image.Exif()
    exif[0x0112] = orientation
    rotated_path = _save(sideways, tmp_path / "phone.jpg", quality=95, exif=exif)
    upright_path = _save(upright, tmp_path / "upright.jpg", quality=95)

    from_phone = prepare(rotated_path)
    reference = prepare(upright_path).tensor

    assert from_phone.original.size == upright.size
    assert float((from_phone.tensor - reference).abs().mean()) < 0.02
    ignored = prepare(_save(sideways, tmp_path / "no_exif.jpg", quality=95)).tensor
    assert float((ignored - reference).abs().mean()) > 0.1, "the test shape must not be rotation-symmetric"


def _rgba_transparent() -> Image.Image:
    image = Image.new("RGBA", (200, 160), (0, 0, 0, 0))  # transparent black: must count as white
    ImageDraw.Draw(image).ellipse((60, 20, 140, 140), fill=(120, 10, 10, 255))
    return image


def _palette_transparent() -> Image.Image:
    image = Image.new("P", (200, 160), 0)
    image.putpalette([0, 0, 0, 20, 20, 120] + [0, 0, 0] * 254)
    ImageDraw.Draw(image).ellipse((60, 20, 140, 140), fill=1)
    image.info["transparency"] = 0  # index 0 (black) is transparent
    return image


def _la() -> Image.Image:
    image = Image.new("LA", (200, 160), (0, 0))
    ImageDraw.Draw(image).ellipse((60, 20, 140, 140), fill=(60, 255))
    return image


def _cmyk() -> Image.Image:
    image = Image.new("CMYK", (200, 160), (0, 0, 0, 0))  # white paper
    ImageDraw.Draw(image).ellipse((60, 20, 140, 140), fill=(0, 0, 0, 220))
    return image


def _i16() -> Image.Image:
    image = Image.new("I;16", (200, 160), 65535)  # Pillow's own L conversion would make all of it white
    ImageDraw.Draw(image).ellipse((60, 20, 140, 140), fill=9000)
    return image


def _bilevel() -> Image.Image:
    image = Image.new("1", (200, 160), 1)
    ImageDraw.Draw(image).ellipse((60, 20, 140, 140), fill=0)
    return image


@pytest.mark.parametrize(
    ("make", "fmt", "mode"),
    [
        (_rgba_transparent, "PNG", "RGBA"),
        (_palette_transparent, "PNG", "P"),
        (_palette_transparent, "GIF", "P"),
        (_la, "PNG", "LA"),
        (_cmyk, "JPEG", "CMYK"),
        (_i16, "PNG", "I;16"),
        (_bilevel, "PNG", "1"),
        (_bilevel, "BMP", "1"),
    ],
)
def test_every_mode_gives_a_visible_item(tmp_path, make, fmt, mode):
    path = _save(make(), tmp_path / f"item.{fmt.lower()}", fmt)
    prepared = prepare(path)

    assert prepared.original.mode == mode, "the file should really be in the mode under test"
    assert prepared.inverted, "every background here is white (or transparent, shown as white)"
    _assert_visible_item(prepared.tensor)
    assert to_model_input(make()).allclose(prepared.tensor, atol=0.1), "in-memory image gives the same input"


def test_webp_with_alpha_is_read(tmp_path):
    path = _save(_rgba_transparent(), tmp_path / "item.webp", "WEBP", lossless=True)
    _assert_visible_item(prepare(path).tensor)


def test_dark_background_photo_is_not_inverted(tmp_path):
    photo = Image.new("RGB", (500, 400), (10, 10, 10))
    _trousers(photo, left=100, top=50, width=120, height=300, fill=(230, 230, 230))
    prepared = prepare(_save(photo, tmp_path / "dark.png"))
    assert not prepared.inverted
    _assert_visible_item(prepared.tensor)


def test_prepared_input_image_shows_the_tensor():
    x = torch.rand(1, 1, 28, 28)
    prepared = Prepared(Image.new("L", (28, 28)), x, False, None)
    shown = prepared.input_image()
    assert shown.size == (28, 28) and shown.mode == "L"
    assert shown.getpixel((3, 5)) == round(float(x[0, 0, 5, 3]) * 255)


# ---------- real FashionMNIST samples ----------


def test_every_fashion_mnist_test_image_passes_through_unchanged(fashion):
    _, (images, _) = fashion
    for pixels in images:
        assert torch.equal(to_model_input(_sample_image(pixels))[0, 0], pixels.float() / 255)


def test_samples_saved_as_png_predict_as_the_dataset_tensor(tmp_path, fashion, trained):
    _, (images, _) = fashion
    direct = _direct_predictions(trained, images[:N_SAMPLES])
    for i in range(N_SAMPLES):
        path = _save(_sample_image(images[i]), tmp_path / f"{i}.png")
        prepared = prepare(path)
        assert torch.equal(prepared.tensor[0, 0], images[i].float() / 255)
        assert not prepared.inverted and prepared.crop_box is None
        assert predict(trained, prepared, k=1)[0].index == int(direct[i])


def _agreement(model, images: torch.Tensor, make) -> float:
    direct = _direct_predictions(model, images)
    agree = sum(
        predict(model, make(pixels), k=1)[0].index == int(d) for pixels, d in zip(images, direct, strict=True)
    )
    return agree / len(images)


def test_inverted_samples_are_turned_back(fashion, trained):
    _, (images, _) = fashion
    inputs = torch.cat([to_model_input(_sample_image(255 - p)) for p in images[:N_SAMPLES]])
    assert float((inputs[:, 0] - images[:N_SAMPLES] / 255).abs().mean()) < 0.035  # about 0.023
    rate = _agreement(trained, images[:N_SAMPLES], lambda p: _sample_image(255 - p))
    assert rate >= 0.93  # about 0.97: the re-crop shifts a few faint edges by a pixel


def test_samples_as_product_photos_predict_like_the_dataset(fashion, trained):
    """A sample enlarged 10x, dark on white, off-centre in a JPEG: the whole photo pipeline inverted."""
    _, (images, _) = fashion

    def as_photo(pixels: torch.Tensor) -> bytes:
        item = _sample_image(255 - pixels).resize((280, 280), Image.Resampling.BICUBIC)
        canvas = Image.new("L", (700, 500), 255)
        canvas.paste(item, (380, 150))
        buf = io.BytesIO()
        canvas.convert("RGB").save(buf, "JPEG", quality=85)
        return buf.getvalue()

    assert _agreement(trained, images[:N_SAMPLES], as_photo) >= 0.9  # about 0.96


def test_a_trouser_photo_is_predicted_as_trouser(tmp_path, trained):
    photo = Image.new("RGB", (900, 1000), (250, 250, 250))
    _trousers(photo, left=250, top=120, width=300, height=760, fill=(35, 40, 60))
    top = predict(trained, _save(photo, tmp_path / "trousers.jpg", quality=90), k=3)
    assert top[0].label == "Trouser", top


# ---------- refusals ----------


def test_text_renamed_png_is_refused(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("just some text, not pixels\n" * 20)
    with pytest.raises(BadImage, match="not an image this app can read"):
        prepare(path)


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n" + b"0" * 200,
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n" + b" " * 200,
        b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>",
    ],
    ids=["pdf", "eps", "svg"],
)
def test_other_documents_are_refused(data):
    with pytest.raises(BadImage, match="not an image this app can read"):
        load_image(data)


def test_real_image_of_a_format_not_allowed_is_refused_by_content(tmp_path):
    path = _save(_boot(), tmp_path / "boot.png", "TIFF")  # a genuine TIFF with a .png name
    with pytest.raises(BadImage, match="not an image this app can read"):
        load_image(path)


@pytest.mark.parametrize("side", [20_000, 10_000])
def test_decompression_bombs_are_refused_fast(side):
    # Even with our own pixel limit lifted, Pillow's bomb guard (a warning below 2x its limit) refuses.
    start = time.perf_counter()
    with pytest.raises(BadImage, match=f"too large: {side} x {side} pixels; the limit is 89.4785 megapixels"):
        load_image(_png_with_header(side, side), max_pixels=10**9)
    assert time.perf_counter() - start < 0.5


def test_the_size_message_gives_the_images_own_size_however_large():
    # 2.5 gigapixels: Pillow refuses it before our own check runs, and its message has no size.
    with pytest.raises(BadImage, match="image too large: 50000 x 50000 pixels; the limit is 40 megapixels"):
        load_image(_png_with_header(50_000, 50_000))


@pytest.mark.parametrize(("width", "height"), [(8000, 8000), (MAX_SIDE + 1, 10)])
def test_declared_size_over_our_limits_is_refused_before_decoding(width, height):
    # Its pixel data is garbage: decoding would say "cannot decode", so "too large" means it never got there.
    start = time.perf_counter()
    with pytest.raises(BadImage, match=f"too large: {width} x {height} pixels"):
        load_image(_png_with_header(width, height))
    assert time.perf_counter() - start < 0.5


def test_garbage_pixel_data_under_the_limits_is_a_decode_error():
    with pytest.raises(BadImage, match="cannot decode"):
        load_image(_png_with_header(300, 200))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_truncated_files_cannot_be_decoded(tmp_path, fmt):
    full = _save(Image.effect_noise((256, 256), 60).convert("RGB"), tmp_path / "full", fmt).read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(full[: len(full) * 2 // 3])
    with pytest.raises(BadImage, match="cannot decode this image"):
        load_image(cut)


def test_byte_limit_applies_to_paths_bytes_and_streams(tmp_path):
    path = _save(_boot(), tmp_path / "boot.png")
    data = path.read_bytes()
    for source in (path, str(path), data, io.BytesIO(data)):
        with pytest.raises(BadImage, match=r"image is too large \(.*; the limit is 0\.1 KB\)"):
            load_image(source, max_bytes=100)
    assert load_image(io.BytesIO(data), max_bytes=len(data)).size == (300, 200)


def test_pixel_limit_is_a_parameter(tmp_path):
    path = _save(_boot(), tmp_path / "boot.png")
    with pytest.raises(BadImage, match="300 x 200 pixels"):
        load_image(path, max_pixels=50_000)


def test_empty_and_missing_files_are_refused(tmp_path):
    with pytest.raises(BadImage, match="empty"):
        load_image(b"")
    with pytest.raises(BadImage, match="cannot read"):
        load_image(tmp_path / "nope.png")


def test_a_folder_is_refused_by_name(tmp_path):
    with pytest.raises(BadImage, match=f"^{re.escape(str(tmp_path))} is a folder, not an image file$"):
        load_image(tmp_path)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    outcome = []

    def read():
        try:
            load_image(fifo)
        except BadImage as exc:
            outcome.append(str(exc))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=5)
    if reader.is_alive():  # blocked opening the FIFO: a writer that closes at once lets it go
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=5)
        pytest.fail("reading a FIFO waited for a writer")
    assert outcome == [f"{fifo} is not a regular file (a device, pipe or socket is no image)"]


_READ_DEV_ZERO = """
import resource
from core.base.errors import BadImage
from core.model.predict import load_image

size = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (size + 2**30, size + 2**30))  # a MemoryError, not the OOM killer
try:
    load_image("/dev/zero")
except BadImage as exc:
    print(exc)
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux's /dev/zero and /proc")
def test_an_endless_device_is_refused_without_reading_it():
    # Run apart: reading /dev/zero to its end would fill this process's memory.
    done = subprocess.run(
        [sys.executable, "-c", _READ_DEV_ZERO], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.stdout == "/dev/zero is not a regular file (a device, pipe or socket is no image)\n", (
        done.stderr
    )


def test_flat_image_has_no_item(tmp_path):
    with pytest.raises(BadImage, match="no item found"):
        prepare(_save(Image.new("RGB", (300, 300), (200, 180, 150)), tmp_path / "flat.png"))


def test_animated_gif_uses_the_first_frame_quickly(tmp_path):
    first = Image.new("L", (8, 8), 255)
    first.paste(0, (1, 1, 4, 7))  # a dark bar on the left of the first frame
    frames = [first]
    for i in range(1, 2000):
        frame = Image.new("L", (8, 8), 255)
        frame.putpixel((i % 8, (i // 8) % 8), 0)
        frames.append(frame)
    path = _save(first, tmp_path / "anim.gif", "GIF", save_all=True, append_images=frames[1:], duration=20)
    assert Image.open(path).n_frames == 2000

    start = time.perf_counter()
    prepared = prepare(path)
    assert time.perf_counter() - start < 1.0
    assert prepared.crop_box == (1, 1, 4, 7)
    assert torch.equal(prepared.tensor, to_model_input(first))


@pytest.mark.parametrize("size", [(1, 1), (1, 50_000), (50_000, 1), (2, 9000), (9000, 3)])
def test_tiny_and_thin_images_give_a_tensor_or_bad_image(tmp_path, size):
    image = Image.new("L", size, 255)
    image.putpixel((0, 0), 0)
    path = _save(image, tmp_path / "thin.png")
    try:
        prepared = prepare(path)
    except BadImage as exc:
        assert str(exc)
    else:
        _assert_valid(prepared.tensor)


# ---------- predict ----------


@pytest.fixture(scope="module")
def untrained():
    torch.manual_seed(0)
    return build_model("mlp")


def test_predict_returns_sorted_top_k(untrained):
    x = torch.rand(1, 1, 28, 28)
    top = predict(untrained, x, k=3)
    assert len(top) == 3 and all(isinstance(p, Prediction) for p in top)
    assert [p.prob for p in top] == sorted((p.prob for p in top), reverse=True)
    assert sum(p.prob for p in top) <= 1.0 + 1e-6
    assert all(p.label == CLASSES[p.index] for p in top)
    assert len(predict(untrained, x, k=0)) == 1
    everything = predict(untrained, x, k=99)
    assert sorted(p.index for p in everything) == list(range(10))
    assert sum(p.prob for p in everything) == pytest.approx(1.0, abs=1e-5)


def test_predict_accepts_every_input_kind_alike(tmp_path, untrained, fashion):
    _, (images, _) = fashion
    pixels = images[0]
    path = _save(_sample_image(pixels), tmp_path / "sample.png")
    x = pixels.float() / 255
    inputs = [x, x[None], x[None, None], pixels, _sample_image(pixels), path, str(path), path.read_bytes()]
    inputs += [io.BytesIO(path.read_bytes()), prepare(path)]
    expected = predict(untrained, x, k=10)
    for image in inputs:
        got = predict(untrained, image, k=10)
        assert [p.index for p in got] == [p.index for p in expected]
        assert [p.prob for p in got] == pytest.approx([p.prob for p in expected], abs=1e-6)
    with pytest.raises(ValueError, match="28x28"):
        predict(untrained, torch.zeros(3, 28, 28))


def test_predict_restores_training_mode(untrained):
    untrained.train()
    predict(untrained, torch.rand(28, 28))
    assert untrained.training
    untrained.eval()


def test_predict_is_fast(tmp_path, untrained):
    photo = Image.new("RGB", (1200, 900), (255, 255, 255))
    _trousers(photo, left=500, top=100, width=250, height=650, fill=(40, 40, 40))
    data = _save(photo, tmp_path / "photo.jpg", quality=90).read_bytes()
    predict(untrained, data)  # warm-up: first calls pay one-off costs
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        predict(untrained, data)
        timings.append(time.perf_counter() - start)
    assert sorted(timings)[2] < 0.1, f"median {sorted(timings)[2]:.3f}s for a 1200x900 JPEG"


@pytest.mark.parametrize(("fill", "inverted"), [((245, 245, 240, 255), False), ((30, 30, 60, 255), True)])
def test_an_item_on_a_transparent_png_keeps_its_lightness(tmp_path, fill, inverted):
    """A white shirt cut out on transparency stays light on dark; a dark one is inverted, as on paper."""
    image = Image.new("RGBA", (200, 160), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((70, 20, 130, 140), fill=fill)
    prepared = prepare(_save(image, tmp_path / "cutout.png"))
    assert prepared.inverted is inverted
    _assert_visible_item(prepared.tensor)
    assert float(prepared.tensor[0, 0, 14, 14]) > 0.9, "the item's middle is bright in the model input"


def test_a_drawings_data_url_is_decoded_through_the_image_limits():
    image = Image.new("RGBA", (280, 280), "white")
    ImageDraw.Draw(image).line([(140, 30), (140, 250)], fill="black", width=20)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    assert load_data_url(url).size == (280, 280)
    with pytest.raises(BadImage, match=r"^image too large: 280 x 280 pixels; the limit is 0.01 megapixels"):
        load_data_url(url, max_pixels=10_000)
    with pytest.raises(BadImage, match=r"^image is too large \(.* KB; the limit is 0.1 KB\)$"):
        load_data_url(url, max_bytes=100)  # refused from the URL's length, before base64 is decoded
