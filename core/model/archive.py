"""A checkpoint's bytes, read safely: the zip archive checked entry by entry and copied uncompressed,
then torch.load with weights_only=True and no fallback. Whatever is refused is said in words."""

import io
import pickle
import re
import warnings
import zipfile

import torch

from core.base.errors import BadCheckpoint

_MB = 1024 * 1024
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive since PyTorch 1.6

# Limits on the zip archive, checked before torch reads it. torch.save writes one entry per tensor
# plus six small records (data.pkl, version, byteorder, ...), all uncompressed (ZIP_STORED).
_MAX_ENTRIES = 256
_MAX_RECORD_BYTES = 1024 * 1024  # any entry but tensor data: data.pkl describes tensors in a few KB
_CENTRAL_ENTRY = b"PK\x01\x02"  # starts every central-directory entry a zip reader parses
_TENSOR_DATA = re.compile(r"[^/]+/data/\d+")  # where torch.save puts each tensor's bytes
_ZIP_METHODS = {8: "DEFLATE", 9: "DEFLATE64", 12: "bzip2", 14: "LZMA", 93: "Zstandard"}


def size_text(n: int) -> str:
    return f"{n / _MB:.4g} MB" if n >= _MB else f"{n:,} bytes"


def clip(text: str, limit: int = 120) -> str:
    text = text.splitlines()[0] if text else text  # one line, whatever the text underneath says
    return text if len(text) <= limit else text[: limit - 3] + "..."


def checked_archive(data: bytes, source: str) -> bytes:
    """The checkpoint's zip archive, copied entry by entry into one written here.

    torch.load reads zips with its own reader, which believes the sizes and the compression an
    archive declares: 2 MB of deflated zeros unpack to gigabytes. So torch reads only this copy,
    every entry of which was stored uncompressed, fit the checks below and was read by zipfile,
    which reads a stored entry's declared size and no more, and checks its CRC."""
    if not data:
        raise BadCheckpoint(f"{source} is empty")
    if not data.startswith(_ZIP_MAGIC):
        raise BadCheckpoint(
            f"{source} is not a valid checkpoint (not a PyTorch zip file; it looks like "
            f"{_looks_like(data)}). Save one with torch.save(model.state_dict(), 'model.pth')"
        )
    # zipfile builds an object for every entry of the central directory, each of which starts with
    # this signature: counting them bounds that work (a 64 MB directory holds ~1.4 million entries).
    if data.count(_CENTRAL_ENTRY) > _MAX_ENTRIES:
        raise BadCheckpoint(
            f"{source} is not a valid checkpoint (a zip archive of more than {_MAX_ENTRIES} entries; "
            "torch.save writes one per tensor)"
        )
    try:
        original = zipfile.ZipFile(io.BytesIO(data))
        _check_entries(original.infolist(), len(data), source)
        copy = io.BytesIO()
        with zipfile.ZipFile(copy, "w", zipfile.ZIP_STORED) as rewritten:
            for entry in original.infolist():
                rewritten.writestr(entry.filename, _read_entry(original, entry))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, RuntimeError) as e:
        raise BadCheckpoint(f"{source} is not a valid checkpoint (truncated or damaged)") from e
    return copy.getvalue()


def _check_entries(entries: list[zipfile.ZipInfo], archive_bytes: int, source: str) -> None:
    """What torch.save writes: uniquely named, unencrypted, uncompressed entries holding no more bytes
    than the archive does (entries that overlap could each claim all of it)."""
    names = [entry.filename for entry in entries]
    if len(set(names)) != len(names) or not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        raise BadCheckpoint(
            f"{source} is not a valid checkpoint (a zip archive, but not one torch.save wrote)"
        )
    for entry in entries:
        _check_entry(entry, archive_bytes, source)
    declared = sum(entry.file_size for entry in entries)
    if declared > archive_bytes:
        raise BadCheckpoint(
            f"{source} is not a valid checkpoint (its zip entries declare {size_text(declared)}, "
            f"more than the whole file's {size_text(archive_bytes)}); it was refused unread"
        )


def _check_entry(entry: zipfile.ZipInfo, archive_bytes: int, source: str) -> None:
    name = clip(repr(entry.filename), 60)
    if entry.flag_bits & 0x1:
        raise BadCheckpoint(f"{source} is not a valid checkpoint (zip entry {name} is encrypted)")
    if entry.compress_type != zipfile.ZIP_STORED:
        method = _ZIP_METHODS.get(entry.compress_type, f"method {entry.compress_type}")
        raise BadCheckpoint(
            f"{source} is not a valid checkpoint (zip entry {name} is compressed with {method}, "
            "which torch.save never does); it was refused unread"
        )
    limit = archive_bytes if _TENSOR_DATA.fullmatch(entry.filename) else _MAX_RECORD_BYTES
    if entry.file_size != entry.compress_size or entry.file_size > limit:
        raise BadCheckpoint(
            f"{source} is not a valid checkpoint (zip entry {name} declares {size_text(entry.file_size)}, "
            f"over the {size_text(limit)} it may hold); it was refused unread"
        )


def _read_entry(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> bytes:
    with archive.open(entry) as member:
        data = member.read(entry.file_size)  # a stored entry: exactly what it declared, or an error
    if len(data) != entry.file_size:
        raise EOFError(f"zip entry {entry.filename!r} is cut short")
    return data


def _looks_like(data: bytes) -> str:
    head = data[:16]
    for magic, kind in (
        (b"\x89PNG", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"GIF8", "a GIF image"),
    ):
        if head.startswith(magic):
            return kind
    if head.startswith(b"\x80"):
        return "a plain pickle or a pre-1.6 PyTorch file"
    try:
        data[:1024].decode("utf-8")
    except UnicodeDecodeError:
        return "unknown binary data"
    return "a text file"


def _refusal(error: str, data: bytes, source: str) -> str:
    # A pickled nn.Module always carries its attribute dicts; a __reduce__ payload need not.
    if b"_modules" in data and b"_parameters" in data:
        return (
            f"{source}: this file holds a whole pickled model, not a state_dict; "
            "save it with torch.save(model.state_dict(), 'model.pth')"
        )
    found = re.search(r"GLOBAL ([\w.]+)", error)
    what = f" ({found.group(1)})" if found else ""
    return (
        f"{source} contains code or objects that are not allowed in a checkpoint{what}; "
        "it was refused and nothing in it was run"
    )


def safe_torch_load(archive: bytes, source: str) -> object:
    # weights_only=True is the whole safety story: there is deliberately no fallback without it.
    # Always to CPU: checks run there, and a device problem must not read as a damaged file.
    try:
        with warnings.catch_warnings():
            # torch warns about what the checks after it refuse in words (sparse tensors, for one);
            # a warning on the server's stderr would tell nobody anything.
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(archive), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise BadCheckpoint(_refusal(str(e), archive, source)) from e
    except Exception as e:  # torch reports damage as RuntimeError, ValueError, EOFError, ...
        raise BadCheckpoint(f"{source} is not a valid checkpoint (truncated or damaged)") from e
