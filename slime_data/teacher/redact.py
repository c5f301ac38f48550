"""Keep the API key out of everything we print or write.

The key is only ever handed to the HTTP client. Text that came back from a server (error
bodies, model output) can still echo it, so every message we surface goes through ``redact``.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"
# Provider key shapes (OpenAI "sk-...", Azure/other bearer tokens are caught by the exact match).
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*]{8,}")


def redact(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` and anything shaped like an OpenAI key replaced."""
    if secret:
        text = text.replace(secret, REDACTED)
    return _KEY_LIKE.sub(REDACTED, text)
