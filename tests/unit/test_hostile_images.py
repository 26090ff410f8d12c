"""core.model.predict against files built to cost CPU: each is refused cheaply, or decoded within its
budget."""

import io
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

import core.model.predict
from core.base.errors import BadImage
from core.data.fashion import PROJECT_ROOT
from core.model.predict import MAX_JPEG_SEGMENTS, MAX_READS, load_image, prepare

HOSTILE_SCANS = 2_000  # 165 KB; 20 s of CPU to decode on the 2-core VM this was written on
COPIES = 5  # files in one run, as in one multi-file upload
CPU_LIMIT_S = 1.0  # for all COPIES together; refusing them measured about 0.01 s
PEAK_LIMIT_MB = 100  # memory above what the process held before; measured under 1 MB


# ---------- hostile files, built here ----------


def repeated_scan_jpeg(repeats: int = HOSTILE_SCANS, side: int = 4096, **params) -> bytes:
    """A progressive JPEG of a white square whose last scan (its SOS segment and entropy-coded data) is
    repeated `repeats` times before EOI: a valid file that libjpeg decodes scan after scan."""
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), "white").save(buffer, "JPEG", progressive=True, **params)
    data = buffer.getvalue()
    # Pillow writes no thumbnail or other segment that could hold the bytes FF DA, and entropy-coded
    # data never does (an FF there is followed by 00), so the last FF DA is the last scan's marker.
    last_scan, end = data.rindex(b"\xff\xda"), len(data) - 2  # the file ends with EOI (FF D9)
    return data[:end] + data[last_scan:end] * repeats + data[end:]


def png_bomb(side: int = 13_000) -> bytes:
    """A white side x side RGBA PNG, written row by row: 676 MB of pixels at 13,000 a side, 0.66 MB of
    file. Pillow is never asked to hold the image, so building it costs no memory."""
    row = b"\x00" + b"\xff" * (side * 4)  # filter type 0, then the row's RGBA bytes
    packer = zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)  # 8 bits, RGBA, no interlace
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def _item(size=(64, 64)) -> Image.Image:
    image = Image.new("L", size, 255)
    image.paste(0, (size[0] // 6, size[1] // 6, size[0] * 2 // 3, size[1] * 5 // 6))
    return image


def _encoded(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_with(extra: bytes, *, after_pixels: bool = False) -> bytes:
    """A real PNG with `extra` chunks spliced in right after IHDR, or right before IEND."""
    data = _encoded(_item(), "PNG")
    at = len(data) - 12 if after_pixels else 8 + 25  # IEND is 12 bytes; signature 8, IHDR 25
    return data[:at] + extra + data[at:]


def _flood(part: bytes) -> int:
    return (core.model.predict.MAX_IMAGE_BYTES - 4096) // len(part)  # as many as fit in an allowed upload


def _png_chunk_flood(after_pixels: bool = False) -> bytes:
    empty = _chunk(b"tEXt", b"")
    return _png_with(empty * _flood(empty), after_pixels=after_pixels)


def _jpeg_segment_flood() -> bytes:
    data = _encoded(_item().convert("RGB"), "JPEG")
    comment = b"\xff\xfe\x00\x02"  # an empty COM segment
    return data[:2] + comment * _flood(comment) + data[2:]


def _gif_extension_flood() -> bytes:
    data = _encoded(_item(), "GIF")
    colours = 3 * 2 ** ((data[10] & 7) + 1) if data[10] & 0x80 else 0
    at = 13 + colours  # after the header, screen descriptor and global colour table
    comment = b"\x21\xfe\x00"  # an empty comment extension
    return data[:at] + comment * _flood(comment) + data[at:]


# ---------- the repeated-scan JPEG, measured in a process of its own ----------

_MEASURE = """
import resource, sys
from core.base.errors import BadImage
from core.model.predict import load_image

def peak_kb():  # VmHWM: this process's peak resident memory
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets VmHWM to what is resident now
before, peak_before = resource.getrusage(resource.RUSAGE_SELF), peak_kb()
for path in sys.argv[1:]:
    try:
        load_image(path)
        print("decoded")
    except BadImage as exc:
        print(f"refused: {exc}")
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
print(f"cpu_s={cpu:.4f} peak_rise_mb={(peak_kb() - peak_before) / 1024:.1f}")
"""


def _measure(paths: list[Path], timeout: float) -> tuple[list[str], float, float, str]:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _MEASURE, *map(str, paths)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{len(paths)} hostile files were still being decoded after {timeout:.0f} s")
    assert done.returncode == 0, done.stderr
    *lines, figures = done.stdout.strip().splitlines()
    cpu, peak = (float(part.split("=")[1]) for part in figures.split())
    return lines, cpu, peak, done.stderr


@pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="measures memory through Linux's /proc"
)
def test_several_repeated_scan_jpegs_are_refused_with_little_cpu_and_memory(tmp_path):
    data = repeated_scan_jpeg()
    assert len(data) < 200_000, "small enough to pass every byte and pixel limit"
    paths = []
    for i in range(COPIES):
        paths.append(tmp_path / f"scans{i}.jpg")
        paths[-1].write_bytes(data)

    lines, cpu, peak, stderr = _measure(paths, timeout=60)

    print(f"\n{COPIES} x {len(data) / 1024:.0f} KB, {HOSTILE_SCANS + 10} scans each: refused in {cpu:.3f} s "
          f"of CPU in all, peak memory +{peak:.1f} MB")  # fmt: skip
    assert lines == [lines[0]] * COPIES
    assert lines[0].startswith("refused: JPEG has over ") and "scans" in lines[0]
    assert cpu < CPU_LIMIT_S
    assert peak < PEAK_LIMIT_MB
    assert not stderr, "nothing, not even a warning, reaches stderr"


# ---------- the JPEG scan limit ----------


def test_the_scan_limit_scales_with_the_pixels():
    # 60 scans cost little at 1000 x 1000 and a second or more at 4096 x 4096.
    assert load_image(repeated_scan_jpeg(50, side=1000)).size == (1000, 1000)
    with pytest.raises(BadImage, match=r"JPEG has over 59 scans, the limit for 4096 x 4096 pixels"):
        load_image(repeated_scan_jpeg(50))


@pytest.mark.parametrize(
    ("mode", "params"),
    [
        ("RGB", {"progressive": True}),
        ("L", {"progressive": True}),
        ("CMYK", {"progressive": True}),
        ("RGB", {"progressive": True, "subsampling": 0}),
    ],
    ids=["progressive", "grey", "cmyk", "no-subsampling"],
)
def test_ordinary_progressive_jpegs_at_the_pixel_limit_pass(mode, params):
    # 10 scans in colour, 6 in grey, 18 in CMYK (libjpeg's own scripts); the limit here is 25.
    image = Image.new("RGB", (8000, 5000), (236, 232, 225))  # 40 megapixels, the limit
    ImageDraw.Draw(image).rectangle((3000, 1000, 5000, 4000), fill=(40, 50, 90))
    data = _encoded(image.convert(mode), "JPEG", **params)
    start = time.thread_time()
    assert load_image(data).size == (2000, 1250)
    assert time.thread_time() - start < core.model.predict.DECODE_CPU_SECONDS / 2


def test_scan_markers_inside_other_segments_are_not_counted():
    # An EXIF thumbnail is a JPEG inside an APP1 segment, with scan markers of its own; a comment can
    # hold any bytes. The count walks segment by segment, so neither is taken for the image's scans.
    fake_scans = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" * 6000
    comment = b"\xff\xfe" + (2 + len(fake_scans)).to_bytes(2, "big") + fake_scans
    data = repeated_scan_jpeg(0, side=4096)
    assert load_image(data[:2] + comment + data[2:]).size == (1024, 1024)


def test_a_flood_of_segments_between_scans_is_refused():
    data = _encoded(_item((256, 256)).convert("RGB"), "JPEG", progressive=True)
    second_scan = data.index(b"\xff\xda", data.index(b"\xff\xda") + 2)
    comments = b"\xff\xfe\x00\x02" * (MAX_JPEG_SEGMENTS + 1)  # past Pillow's header, walked by ours alone
    start = time.thread_time()
    with pytest.raises(BadImage, match=f"JPEG has over {MAX_JPEG_SEGMENTS:,} marker segments"):
        load_image(data[:second_scan] + comments + data[second_scan:])
    assert time.thread_time() - start < 0.1


# ---------- what Pillow parses part by part in Python ----------


@pytest.mark.parametrize(
    "make",
    [
        _png_chunk_flood,
        lambda: _png_chunk_flood(after_pixels=True),
        _jpeg_segment_flood,
        _gif_extension_flood,
    ],
    ids=["png-chunks", "png-chunks-after-pixels", "jpeg-segments", "gif-extensions"],
)
def test_files_made_of_millions_of_tiny_parts_are_refused_fast(make):
    data = make()  # each took 2-3 s of CPU to decode in full
    start = time.thread_time()
    with pytest.raises(BadImage, match=f"too many small parts \\(over {MAX_READS:,} reads\\)"):
        load_image(data)
    assert time.thread_time() - start < 0.5  # about 0.1 s


def test_a_png_in_small_chunks_is_still_read():
    noise = Image.effect_noise((1800, 1800), 50)
    data = _encoded(noise, "PNG")
    head, rest = data[:33], data[33:-12]
    pixels = b"".join(rest[i + 8 : i + 8 + int.from_bytes(rest[i : i + 4], "big")] for i in _chunks(rest))
    small = b"".join(_chunk(b"IDAT", pixels[i : i + 1024]) for i in range(0, len(pixels), 1024))
    assert len(small) > 3_000_000  # 1 KB chunks, as some encoders write
    assert load_image(head + small + data[-12:]).size == (1800, 1800)


def _chunks(body: bytes):
    at = 0
    while at < len(body):
        yield at
        at += 12 + int.from_bytes(body[at : at + 4], "big")


def test_decoding_stops_once_it_has_used_its_cpu_budget(monkeypatch):
    data = _encoded(Image.effect_noise((3000, 3000), 50), "PNG")
    assert load_image(data).size == (3000, 3000)
    monkeypatch.setattr(core.model.predict, "DECODE_CPU_SECONDS", 0.0)
    with pytest.raises(BadImage, match="image took over 0 s of CPU time to decode; re-save it"):
        load_image(data)


# ---------- many frames, big metadata ----------


@pytest.mark.parametrize(("fmt", "params"), [("PNG", {}), ("WEBP", {"lossless": True})], ids=["apng", "webp"])
def test_an_animation_of_thousands_of_frames_gives_its_first_frame_quickly(fmt, params):
    first = _item()
    frames = [Image.new("L", (64, 64), i % 256) for i in range(3000)]
    data = _encoded(first, fmt, save_all=True, append_images=frames, duration=10, **params)
    assert Image.open(io.BytesIO(data)).n_frames == 3001
    start = time.thread_time()
    prepared = prepare(data)
    assert time.thread_time() - start < 0.2
    assert prepared.crop_box == (10, 10, 42, 53)


@pytest.mark.parametrize(
    ("kind", "body"),
    [(b"zTXt", b"comment\x00\x00"), (b"iCCP", b"profile\x00\x00")],
    ids=["text", "icc-profile"],
)
def test_compressed_metadata_that_unpacks_to_megabytes_is_refused(kind, body):
    bomb = zlib.compress(bytes(50_000_000), 9)  # 50 KB of zlib; Pillow unpacks at most 1 MB of one chunk
    start = time.thread_time()
    with pytest.raises(BadImage, match="block too large to unpack; re-save it without metadata"):
        load_image(_png_with(_chunk(kind, body + bomb)))
    assert time.thread_time() - start < 0.1


def test_a_huge_exif_block_is_parsed_quickly():
    entries = 65535  # the most one EXIF directory can hold
    rows = b"".join(struct.pack("<HHI4s", 0x9000 + i % 20000, 7, 4, b"data") for i in range(entries))
    exif = b"II*\x00\x08\x00\x00\x00" + struct.pack("<H", entries) + rows + bytes(4)
    data = _encoded(_item(), "PNG", exif=exif)
    start = time.thread_time()
    prepared = prepare(data)  # the orientation is looked up in it
    assert time.thread_time() - start < 0.5  # about 0.05 s
    assert prepared.crop_box == (10, 10, 42, 53)


def test_an_animated_webp_declaring_a_huge_canvas_is_refused_before_it_is_allocated():
    frames = [_item().rotate(90)]  # a second, different frame: an animation, with a canvas size
    data = bytearray(_encoded(_item(), "WEBP", save_all=True, append_images=frames, lossless=True))
    canvas = data.index(b"VP8X") + 12  # width - 1 and height - 1, 3 bytes each, little-endian
    data[canvas : canvas + 6] = (15_999).to_bytes(3, "little") * 2
    start = time.thread_time()
    with pytest.raises(BadImage, match="image too large: 256,000,000 pixels; the limit is 40 megapixels"):
        load_image(bytes(data))
    assert time.thread_time() - start < 0.1
