"""Attachments: images and files as chat content parts, modality checks, the user message content."""

from __future__ import annotations

import base64
import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from or_magic.attachments import (
    AttachmentError,
    check_modalities,
    file_part,
    image_part,
    modality,
    sniff,
    user_content,
)


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = png_bytes()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20
GIF = b"GIF89a" + b"\x01\x00\x01\x00" + b"\x00" * 20
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 20
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"


def decode(url: str) -> tuple[str, bytes]:
    head, _, data = url.partition(",")
    assert head.startswith("data:") and head.endswith(";base64")
    return head[5:-7], base64.b64decode(data)


# ------------------------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (GIF, "image/gif"),
        (b"GIF87a" + b"\x00" * 10, "image/gif"),
        (WEBP, "image/webp"),
        (PDF, "application/pdf"),
        (b"\xef\xbb\xbf%PDF-1.4", "application/pdf"),
        (b"BM" + b"\x00" * 20, "image/bmp"),
        (b"II*\x00" + b"\x00" * 10, "image/tiff"),
        (b"\x00\x00\x00\x1cftypheic" + b"\x00" * 8, "image/heic"),
        (b"\x00\x00\x00\x1cftypavif" + b"\x00" * 8, "image/avif"),
        (b"PK\x03\x04rest", "application/zip"),
        (b"plain text", None),
        (b"", None),
        (b"RIFF\x00\x00\x00\x00WAVE", None),
    ],
)
def test_sniff(data: bytes, mime: str | None) -> None:
    assert sniff(data) == mime


# ------------------------------------------------------------------------------------------- images


@pytest.mark.parametrize(
    ("data", "mime"), [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")]
)
def test_image_from_bytes_and_path(tmp_path: Path, data: bytes, mime: str) -> None:
    part = image_part(data)
    assert part["type"] == "image_url" and decode(part["image_url"]["url"]) == (mime, data)
    path = tmp_path / "picture.bin"  # the extension lies: the bytes decide
    path.write_bytes(data)
    assert decode(image_part(path)["image_url"]["url"]) == (mime, data)
    assert decode(image_part(str(path))["image_url"]["url"]) == (mime, data)
    assert decode(image_part(bytearray(data))["image_url"]["url"]) == (mime, data)
    assert decode(image_part(memoryview(data))["image_url"]["url"]) == (mime, data)


def test_a_png_named_jpg_is_sent_as_png(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(PNG)
    assert image_part(path)["image_url"]["url"].startswith("data:image/png;base64,")


def test_tilde_paths_are_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "a.png").write_bytes(PNG)
    assert decode(image_part("~/a.png")["image_url"]["url"])[1] == PNG


@pytest.mark.parametrize(
    "url", ["https://example.org/cat.png", "http://example.org/x?y=1", "HTTPS://EXAMPLE.ORG/A.PNG"]
)
def test_image_urls_pass_through(url: str) -> None:
    assert image_part(url) == {"type": "image_url", "image_url": {"url": url}}


def test_image_data_urls_pass_through() -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert image_part(url)["image_url"]["url"] == url


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (b"just text", "these bytes is not a PNG, JPEG, WebP or GIF image"),
        (b"BM" + b"\x00" * 30, "is a BMP image; models take PNG, JPEG, WebP or GIF"),
        (PDF, "is a PDF, not an image: attach it with --file instead"),
        (42, "cannot attach a builtins.int as an image"),
        ({"a": 1}, "cannot attach a builtins.dict as an image"),
        (None, "cannot attach a builtins.NoneType as an image"),
    ],
)
def test_image_errors_are_readable(x: Any, message: str) -> None:
    with pytest.raises(AttachmentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        image_part(x)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(AttachmentError, match=r"image: no such file: '.*nope\.png'"):
        image_part(tmp_path / "nope.png")
    with pytest.raises(AttachmentError, match="is a directory, not a file"):
        image_part(tmp_path)
    assert issubclass(AttachmentError, ValueError)


def test_too_big_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(PNG + b"\x00" * 2000)
    with pytest.raises(AttachmentError, match=r"image 'big\.png' is 2\.1 kB; the limit is 1\.0 kB"):
        image_part(path, max_bytes=1000)
    with pytest.raises(AttachmentError, match="the image is"):
        image_part(PNG, max_bytes=10)
    with pytest.raises(AttachmentError, match="the limit is"):
        image_part("data:image/png;base64," + "A" * 100, max_bytes=10)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the OS refuses to read (permissions are not enforced for root, so the refusal is simulated)."""
    path = tmp_path / "locked.png"
    path.write_bytes(PNG)
    real_open = os.open

    def refuse(target: Any, flags: int, *args: Any) -> int:
        if Path(target) == path:
            raise PermissionError(13, "Permission denied", str(target))
        return real_open(target, flags, *args)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(AttachmentError, match="cannot read .*Permission denied"):
        image_part(path)


class ReprPng:
    def __init__(self, value: Any) -> None:
        self.value = value

    def _repr_png_(self) -> Any:
        return self.value


class ReprJpeg:
    def _repr_jpeg_(self) -> bytes:
        return JPEG


class ReprFails:
    def _repr_png_(self) -> bytes:
        raise RuntimeError("no backend")


@pytest.mark.parametrize("value", [PNG, (PNG, {"width": 2}), base64.b64encode(PNG).decode()])
def test_repr_png_objects(value: Any) -> None:
    assert decode(image_part(ReprPng(value))["image_url"]["url"]) == ("image/png", PNG)


def test_repr_jpeg_and_failing_repr_png() -> None:
    assert decode(image_part(ReprJpeg())["image_url"]["url"]) == ("image/jpeg", JPEG)
    with pytest.raises(AttachmentError, match=r"ReprFails\._repr_png_\(\) failed: RuntimeError: no backend"):
        image_part(ReprFails())
    with pytest.raises(AttachmentError, match="cannot attach"):
        image_part(ReprPng(None))  # returned nothing: IPython's "no PNG for this object"


def test_pil_images() -> None:
    image_mod = pytest.importorskip("PIL.Image")
    for mode in ("RGB", "RGBA", "L", "P", "CMYK", "1", "I;16", "F"):
        image = image_mod.new(mode, (3, 2))
        mime, data = decode(image_part(image)["image_url"]["url"])
        assert mime == "image/png"
        assert image_mod.open(io.BytesIO(data)).size == (3, 2), mode
    opened = image_mod.open(io.BytesIO(PNG))  # a PngImageFile, from another PIL module
    assert decode(image_part(opened)["image_url"]["url"])[0] == "image/png"


def test_matplotlib_figures_and_axes() -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([1, 2, 3])
    try:
        for obj in (fig, ax):
            mime, data = decode(image_part(obj)["image_url"]["url"])
            assert mime == "image/png" and data.startswith(b"\x89PNG")
    finally:
        plt.close(fig)


def test_importing_attachments_loads_no_heavy_library() -> None:
    code = (
        "import sys, or_magic.attachments as a; a.image_part(b'GIF89a' + bytes(10)); "
        "print(sorted(m for m in ('PIL', 'matplotlib', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------------------------------- files


def test_pdf_from_path(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(PDF)
    part = file_part(path)
    assert part["type"] == "file" and part["file"]["filename"] == "report.pdf"
    assert decode(part["file"]["file_data"]) == ("application/pdf", PDF)
    assert file_part(str(path), filename="other.pdf")["file"]["filename"] == "other.pdf"


def test_pdf_named_txt_is_still_a_pdf(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(PDF)
    assert decode(file_part(path)["file"]["file_data"])[0] == "application/pdf"


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("a.txt", "text/plain"),
        ("a.md", "text/markdown"),
        ("a.csv", "text/csv"),
        ("a.tsv", "text/tab-separated-values"),
        ("a.json", "application/json"),
        ("a.jsonl", "application/jsonl"),
        ("a.html", "text/html"),
        ("a.xml", "application/xml"),
        ("a.yaml", "application/yaml"),
        ("a.py", "text/x-python"),
        ("A.CSV", "text/csv"),
        ("README", "text/plain"),
        ("a.weird", "text/plain"),
    ],
)
def test_text_files_by_extension(tmp_path: Path, name: str, mime: str) -> None:
    path = tmp_path / name
    path.write_text("col,value\nä,1\n", encoding="utf-8")
    part = file_part(path)
    assert part["file"]["filename"] == name
    assert decode(part["file"]["file_data"]) == (mime, "col,value\nä,1\n".encode())


def test_bytes_need_a_filename_unless_they_say_what_they_are() -> None:
    assert file_part(PDF)["file"]["filename"] == "document.pdf"
    assert file_part(b"hello")["file"]["filename"] == "document.txt"
    part = file_part(b"a,b\n1,2\n", filename="data.csv")
    assert part["file"]["filename"] == "data.csv" and decode(part["file"]["file_data"])[0] == "text/csv"
    with pytest.raises(AttachmentError, match=r"pass filename=… \(e\.g\. 'report\.pdf'\)"):
        file_part(b"\x00\x01\x02\xff")


def test_file_urls_pass_through() -> None:
    part = file_part("https://example.org/papers/attention%20is%20all.pdf?download=1")
    assert part == {
        "type": "file",
        "file": {
            "filename": "attention is all.pdf",
            "file_data": "https://example.org/papers/attention%20is%20all.pdf?download=1",
        },
    }
    assert file_part("https://example.org/")["file"]["filename"] == "document.pdf"
    assert file_part("https://example.org/x", filename="x.pdf")["file"]["filename"] == "x.pdf"


def test_file_data_urls_pass_through() -> None:
    url = "data:application/pdf;base64," + base64.b64encode(PDF).decode()
    assert file_part(url)["file"] == {"filename": "document.pdf", "file_data": url}


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (PNG, "chart.png", r"'chart\.png' is an image: attach it with --image instead"),
        (b"PK\x03\x04" + b"\x00" * 20, "report.docx", r"'report\.docx' is a DOCX file; OpenRouter reads PDFs"),
        (b"\x00\x01\x02" * 10, "blob.bin", r"is a BIN file"),
        (b"\xff\xfe\x00\x00", "noext", r"is a binary file"),
    ],
)
def test_file_errors_are_readable(tmp_path: Path, data: bytes, name: str, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(AttachmentError, match=message):
        file_part(path)


def test_file_refuses_other_objects_and_big_files(tmp_path: Path) -> None:
    with pytest.raises(AttachmentError, match=r"cannot attach a builtins\.list as a file"):
        file_part([1, 2])
    with pytest.raises(AttachmentError, match="no such file"):
        file_part(tmp_path / "missing.pdf")
    with pytest.raises(AttachmentError, match="the file is 41 bytes; the limit is 10 bytes"):
        file_part(PDF, max_bytes=10)


# ------------------------------------------------------------------------------------------- modalities


@pytest.mark.parametrize(
    ("part", "kind"),
    [
        ({"type": "text", "text": "hi"}, "text"),
        ({"type": "image_url", "image_url": {"url": "x"}}, "image"),
        ({"type": "file", "file": {}}, "file"),
        ({"type": "input_audio", "input_audio": {}}, "audio"),
        ({"type": "video_url", "video_url": {}}, "video"),
        ({"type": "input_video", "video_url": {}}, "video"),
    ],
)
def test_modality(part: dict[str, Any], kind: str) -> None:
    assert modality(part) == kind


@pytest.mark.parametrize("part", [{"type": "hologram"}, {}, "text", None])
def test_modality_of_a_non_part(part: Any) -> None:
    with pytest.raises(AttachmentError, match="not a chat content part"):
        modality(part)


IMAGE = {"type": "image_url", "image_url": {"url": "https://example.org/a.png"}}
FILE = {"type": "file", "file": {"filename": "a.pdf", "file_data": "https://example.org/a.pdf"}}
AUDIO = {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}


def test_check_modalities() -> None:
    assert check_modalities("m", ["text", "image"], [IMAGE, IMAGE]) is None
    assert check_modalities("m", ["text"], [FILE]) is None  # PDFs work on any model
    assert check_modalities("m", None, [IMAGE]) is None  # unknown model: let the API decide
    assert check_modalities("m", [], [IMAGE]) is None
    assert check_modalities("m", ["text"], []) is None
    assert check_modalities("m", ["TEXT", "Image"], [IMAGE]) is None
    message = check_modalities("openai/gpt-3.5-turbo", ["text"], [IMAGE])
    assert message == (
        "openai/gpt-3.5-turbo does not take image input (it takes: text), so the 1 image attached cannot be "
        "sent; pick a model whose input modalities include image"
    )
    both = check_modalities("m", ["text", "file"], [IMAGE, IMAGE, AUDIO, FILE])
    assert both is not None and "does not take image/audio input" in both and "2 images and 1 audio" in both


# ------------------------------------------------------------------------------------------- content


def test_user_content() -> None:
    assert user_content("hello", []) == "hello"
    assert user_content("", []) == ""
    assert user_content("look", [IMAGE, FILE]) == [{"type": "text", "text": "look"}, IMAGE, FILE]
    assert user_content("  \n", [IMAGE]) == [IMAGE]  # no empty text block: some providers reject it
