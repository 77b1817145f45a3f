"""``--audio X``: a wav or mp3 clip as an ``input_audio`` content part.

The API takes audio only as base64 data (no URL form), so a URL is fetched here, capped at the same size
as other attachments. The format comes from the bytes themselves, never from a name, so a mislabelled
file is refused before anything is sent.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from .attachments import MAX_BYTES, _check_size, _is_url, _read
from .errors import AttachmentError

__all__ = ["audio_part", "audio_format"]


def audio_format(data: bytes) -> str | None:
    """"wav" or "mp3" from the clip's first bytes; None for anything else."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def audio_part(x: Any, *, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """An ``input_audio`` part from bytes, a path or an http(s) URL (wav or mp3)."""
    if isinstance(x, (bytes, bytearray, memoryview)):
        data, what = bytes(x), "audio"
        _check_size(len(data), max_bytes, what)
    elif _is_url(x):
        data, what = _download(str(x), max_bytes), f"audio {str(x)[:80]!r}"
    elif isinstance(x, (str, os.PathLike)):
        path, data = _read(x, max_bytes, "audio")
        what = f"audio {path.name!r}"
    else:
        raise AttachmentError(f"--audio takes a path, a URL or bytes (got {type(x).__name__})")
    fmt = audio_format(data)
    if fmt is None:
        raise AttachmentError(f"{what} is neither wav nor mp3 (the only audio formats sent)")
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(data).decode("ascii"), "format": fmt}}


def _download(url: str, max_bytes: int) -> bytes:
    """The clip at ``url``, read no further than ``max_bytes``."""
    import httpx

    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=30.0) as response:
            response.raise_for_status()
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                _check_size(len(data), max_bytes, "audio download")
            return data
    except httpx.HTTPError as err:
        raise AttachmentError(f"audio: cannot download {url[:80]!r}: {type(err).__name__}") from None
