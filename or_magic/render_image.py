"""Images the API returned, as display bundles: base64 data URLs only, checked against their bytes."""

from __future__ import annotations

import base64
import binascii
import re

_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|jpg|gif|webp);base64,(.*)", re.IGNORECASE | re.DOTALL)
_MAGIC = [
    ("image/png", lambda b: b.startswith(b"\x89PNG\r\n\x1a\n")),
    ("image/jpeg", lambda b: b.startswith(b"\xff\xd8\xff")),
    ("image/gif", lambda b: b.startswith((b"GIF87a", b"GIF89a"))),
    ("image/webp", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
]


def image_bundle(data_url: str) -> dict[str, object] | None:
    """A display bundle for an image the API returned as a base64 data URL; None for anything else.

    Never a remote URL (loading it could leak data) and never SVG (it can carry script). The declared
    type must match the bytes' signature (a mismatch is corrected to the real type).
    """
    if not isinstance(data_url, str):
        return None
    m = _DATA_IMAGE.fullmatch(data_url.strip())
    if m is None:
        return None
    b64 = re.sub(r"\s+", "", m.group(2))
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    mime = next((name for name, test in _MAGIC if test(raw[:16])), None)
    if mime is None:
        return None
    size = len(raw) / 1024
    return {mime: b64, "text/plain": f"<image {mime}, {size:,.1f} KB>"}
