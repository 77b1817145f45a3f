"""Attachments for ``--image X`` and ``--file X``: notebook objects turned into chat content parts.

An image becomes ``{"type": "image_url", "image_url": {"url": …}}`` and a document becomes
``{"type": "file", "file": {"filename": …, "file_data": …}}`` (OPENROUTER.md §2.1). Local data is sent as a
base64 ``data:`` URL whose MIME type comes from the bytes themselves (magic numbers), not from a file name
that may lie; http(s) URLs are passed through for OpenRouter to fetch.

Images may be a path, a URL, bytes, a PIL image, a matplotlib figure (or axes), or anything with
``_repr_png_``/``_repr_jpeg_`` (IPython's convention). None of PIL, matplotlib or numpy is imported here: they
are recognised by their type's module and attributes, so loading the extension stays cheap.

``check_modalities`` compares parts with a model's ``architecture.input_modalities`` from ``/models`` before
anything is sent. PDFs (files) are never refused: OpenRouter parses them for models that cannot read them.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from .errors import AttachmentError

__all__ = [
    "AttachmentError",
    "MAX_BYTES",
    "image_part",
    "file_part",
    "modality",
    "check_modalities",
    "user_content",
    "sniff",
]

MAX_BYTES = 20_000_000

IMAGE_MIMES = ("image/png", "image/jpeg", "image/webp", "image/gif")

# Text-like documents sent as files, by extension (used when the bytes carry no signature).
_TEXT_MIMES = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".log": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".json": "application/json",
    ".jsonl": "application/jsonl",
    ".ndjson": "application/jsonl",
    ".xml": "application/xml",
    ".html": "text/html",
    ".htm": "text/html",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".toml": "application/toml",
    ".ini": "text/plain",
    ".cfg": "text/plain",
    ".rst": "text/x-rst",
    ".tex": "application/x-tex",
    ".py": "text/x-python",
    ".ipynb": "application/x-ipynb+json",
    ".js": "text/javascript",
    ".ts": "text/plain",
    ".sql": "application/sql",
    ".sh": "text/x-shellscript",
    ".r": "text/plain",
    ".c": "text/x-c",
    ".h": "text/x-c",
    ".cpp": "text/x-c++",
    ".java": "text/x-java",
    ".go": "text/plain",
    ".rs": "text/plain",
}


# ------------------------------------------------------------------------------------------- sniffing


def sniff(data: bytes) -> str | None:
    """The MIME type announced by ``data``'s leading bytes (images, PDF), or None."""
    head = bytes(data[:16])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"BM"):
        return "image/bmp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypavif", b"ftypmif1"):
        return "image/heic" if b"hei" in head[8:12] else "image/avif"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    return None


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _check_size(n: int, max_bytes: int, what: str) -> None:
    if n > max_bytes:
        raise AttachmentError(f"{what} is {_size(n)}; the limit is {_size(max_bytes)}")


def _is_url(x: Any) -> bool:
    return isinstance(x, str) and x[:8].lower().startswith(("http://", "https://"))


def _is_data_url(x: Any, prefix: str) -> bool:
    return isinstance(x, str) and x[:64].lower().startswith(prefix)


def _read(path: str | os.PathLike[str], max_bytes: int, what: str) -> tuple[Path, bytes]:
    """The file's bytes: only a regular file, and never more than ``max_bytes`` read, whatever it claims.

    ``st_size`` is 0 for devices and may change while reading, so the read itself is capped too.
    """
    p = Path(os.fspath(path)).expanduser()
    try:  # non-blocking, so a FIFO swapped in after a check cannot hang the kernel; checks use the open file
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise AttachmentError(f"{what}: no such file: {str(p)!r}") from None
    except IsADirectoryError:
        raise AttachmentError(f"{what}: {str(p)!r} is a directory, not a file") from None
    except OSError as exc:
        raise AttachmentError(f"{what}: cannot read {str(p)!r}: {exc.strerror or exc}") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise AttachmentError(f"{what}: {str(p)!r} is a directory, not a file")
        raise AttachmentError(f"{what}: {str(p)!r} is not a regular file (a device, pipe or socket); "
                              "copy what you want to send into a file")
    with os.fdopen(fd, "rb") as fh:
        _check_size(info.st_size, max_bytes, f"{what} {p.name!r}")
        try:
            data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise AttachmentError(f"{what}: cannot read {str(p)!r}: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise AttachmentError(f"{what} {p.name!r} is over the limit of {_size(max_bytes)} (it grew while read)")
    return p, data


def _module(x: Any) -> str:
    return getattr(type(x), "__module__", "") or ""


# ------------------------------------------------------------------------------------------- images


def image_part(x: Any, *, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """An ``image_url`` content part from a path, URL, bytes, PIL image, matplotlib figure or ``_repr_png_``."""
    return {"type": "image_url", "image_url": {"url": _image_url(x, max_bytes)}}


def _image_url(x: Any, max_bytes: int) -> str:
    if _is_url(x):
        return x
    if _is_data_url(x, "data:image/"):
        _check_size(len(x) * 3 // 4, max_bytes, "the image")
        return x
    if isinstance(x, (str, os.PathLike)):
        path, data = _read(x, max_bytes, "image")
        return _data_url(_image_mime(data, f"{path.name!r}"), data)
    if isinstance(x, (bytes, bytearray, memoryview)):
        data = bytes(x)
        _check_size(len(data), max_bytes, "the image")
        return _data_url(_image_mime(data, "these bytes"), data)
    data, mime = _render_image(x)
    _check_size(len(data), max_bytes, f"the image from {type(x).__name__}")
    return _data_url(mime, data)


def _image_mime(data: bytes, what: str) -> str:
    mime = sniff(data)
    if mime in IMAGE_MIMES:
        return mime  # type: ignore[return-value]
    if mime is not None and mime.startswith("image/"):
        kind = mime.split("/")[1].upper()
        raise AttachmentError(
            f"{what} is a {kind} image; models take PNG, JPEG, WebP or GIF (convert it, e.g. with PIL: "
            "Image.open(path).save('image.png'))"
        )
    if mime == "application/pdf":
        raise AttachmentError(f"{what} is a PDF, not an image: attach it with --file instead")
    raise AttachmentError(f"{what} is not a PNG, JPEG, WebP or GIF image")


def _render_image(x: Any) -> tuple[bytes, str]:
    """PNG (or JPEG) bytes from a rich object: PIL image, matplotlib figure/axes, IPython display object."""
    module = _module(x)
    if module.startswith("PIL.") and hasattr(x, "save"):
        return _pil_png(x), "image/png"
    if module.startswith("matplotlib."):
        figure = x if hasattr(x, "savefig") else getattr(x, "figure", None)
        if figure is not None and hasattr(figure, "savefig"):
            import io

            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", bbox_inches="tight")
            return buffer.getvalue(), "image/png"
    for method, mime in (("_repr_png_", "image/png"), ("_repr_jpeg_", "image/jpeg")):
        render = getattr(x, method, None)
        if callable(render):
            try:
                data = render()
            except Exception as exc:
                raise AttachmentError(f"{type(x).__name__}.{method}() failed: {type(exc).__name__}: {exc}") from exc
            if isinstance(data, tuple):  # (data, metadata), as IPython allows
                data = data[0]
            if isinstance(data, str):  # IPython allows base64 text
                try:
                    data = base64.b64decode(data, validate=False)
                except (binascii.Error, ValueError) as exc:
                    raise AttachmentError(f"{type(x).__name__}.{method}() returned text that is not base64") from exc
            if isinstance(data, (bytes, bytearray)) and data:
                found = sniff(bytes(data))
                return bytes(data), found if found in IMAGE_MIMES else mime  # type: ignore[return-value]
    raise AttachmentError(
        f"cannot attach a {type(x).__module__}.{type(x).__qualname__} as an image: give a file path, an "
        "http(s) URL, PNG/JPEG/WebP/GIF bytes, a PIL image, a matplotlib figure, or an object with _repr_png_"
    )


def _pil_png(image: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    try:
        image.save(buffer, format="PNG")
    except (OSError, ValueError, KeyError):  # modes PNG cannot hold (CMYK, some float modes)
        buffer = io.BytesIO()
        image.convert("RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------- files


def file_part(x: Any, *, filename: str | None = None, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """A ``file`` content part from a path, bytes (with a filename, ideally) or an http(s) URL."""
    if _is_url(x):
        name = filename or _url_filename(x)
        return {"type": "file", "file": {"filename": name, "file_data": x}}
    if _is_data_url(x, "data:"):
        _check_size(len(x) * 3 // 4, max_bytes, "the file")
        mime = x[5:].split(";", 1)[0].split(",", 1)[0] or "application/octet-stream"
        name = filename or "document" + (mimetypes.guess_extension(mime) or "")
        return {"type": "file", "file": {"filename": name, "file_data": x}}
    if isinstance(x, (str, os.PathLike)):
        path, data = _read(x, max_bytes, "file")
        name = filename or path.name
    elif isinstance(x, (bytes, bytearray, memoryview)):
        data = bytes(x)
        _check_size(len(data), max_bytes, "the file")
        name = filename or _default_name(data)
    else:
        raise AttachmentError(
            f"cannot attach a {type(x).__module__}.{type(x).__qualname__} as a file: give a file path, an "
            "http(s) URL, or bytes (with filename=…)"
        )
    mime = _file_mime(data, name)
    return {"type": "file", "file": {"filename": name, "file_data": _data_url(mime, data)}}


def _url_filename(url: str) -> str:
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    return name or "document.pdf"


def _default_name(data: bytes) -> str:
    mime = sniff(data)
    if mime == "application/pdf":
        return "document.pdf"
    if mime is None and _is_text(data):
        return "document.txt"
    raise AttachmentError("cannot tell what kind of file these bytes are: pass filename=… (e.g. 'report.pdf')")


def _is_text(data: bytes) -> bool:
    if b"\x00" in data[:8192]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _file_mime(data: bytes, name: str) -> str:
    """PDF by signature; images redirected to --image; text types by extension (content must be text)."""
    mime = sniff(data)
    if mime == "application/pdf":
        return mime
    if mime in IMAGE_MIMES:
        raise AttachmentError(f"{name!r} is an image: attach it with --image instead")
    suffix = Path(name).suffix.lower()
    if mime is None and _is_text(data):
        return _TEXT_MIMES.get(suffix) or _guess_text_mime(name)
    what = f"a {suffix[1:].upper()} file" if suffix else "a binary file"
    raise AttachmentError(
        f"{name!r} is {what}; OpenRouter reads PDFs and plain-text files (txt, md, csv, json, …): "
        "convert it to PDF or text first"
    )


def _guess_text_mime(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name)
    if guessed and (guessed.startswith("text/") or guessed.endswith(("json", "xml", "yaml"))):
        return guessed
    return "text/plain"


# ------------------------------------------------------------------------------------------- modalities

_MODALITIES = {
    "text": "text",
    "image_url": "image",
    "file": "file",
    "input_audio": "audio",
    "video_url": "video",
    "input_video": "video",
}


def modality(part: dict[str, Any]) -> str:
    """The input modality a content part needs: "text", "image", "file", "audio" or "video"."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind not in _MODALITIES:
        raise AttachmentError(f"not a chat content part: {part!r:.80}")
    return _MODALITIES[kind]


def check_modalities(model_id: str, input_modalities: list[str] | None, parts: list[dict[str, Any]]) -> str | None:
    """A readable refusal when ``model_id`` cannot take some part; None when fine or when unknown."""
    if not input_modalities:
        return None
    accepted = {str(m).lower() for m in input_modalities}
    counts: dict[str, int] = {}
    for part in parts:
        kind = modality(part)
        if kind in ("text", "file") or kind in accepted:  # files: OpenRouter parses PDFs for any model
            continue
        counts[kind] = counts.get(kind, 0) + 1
    if not counts:
        return None
    what = " and ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in counts.items())
    takes = ", ".join(sorted(accepted))
    wanted = "/".join(counts)
    return (
        f"{model_id} does not take {wanted} input (it takes: {takes}), so the {what} attached "
        f"cannot be sent; pick a model whose input modalities include {wanted}"
    )


def user_content(text: str, parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """The user message's content: the plain string, or the text part first then the attachments.

    An empty text part is left out: some providers reject empty text blocks.
    """
    if not parts:
        return text
    head = [{"type": "text", "text": text}] if text.strip() else []
    return [*head, *parts]
