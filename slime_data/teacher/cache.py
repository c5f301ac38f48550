"""A disk cache of complete teacher responses: SQLite in WAL mode, one row per request hash.

The key hashes everything that decides the answer — model, prompt version and hash, the
messages (images by content hash, not base64) and the sampling parameters — and nothing else:
not the server URL, not the API key. A row is written only after a complete successful
response, in its own committed transaction, so ``kill -9`` loses at most the requests in flight
and a rerun replays every finished answer for free and in the same order.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,    -- sha256 of the canonical request description
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,    -- kind.version of the template
    body TEXT NOT NULL,      -- the server's JSON response body, as received
    created REAL NOT NULL
)
"""


def request_key(material: dict[str, Any]) -> str:
    """sha256 of ``material`` as canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """``get(key)`` / ``put(key, ...)`` over one SQLite file; safe to share between processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against a killed process (the WAL is in the OS page cache);
            # only a power cut can lose the last commits, which a rerun then re-asks.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise ValueError(f"teacher cache {self.path} cannot be opened: {err}") from None

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT body FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def put(self, key: str, *, model: str, prompt: str, body: str) -> str:
        """Store ``body`` unless the key is there; return the stored body.

        The first complete answer wins, so two processes racing on one request both go on with
        the answer a rerun will replay.
        """
        self._db.execute(
            "INSERT OR IGNORE INTO responses (key, model, prompt, body, created) VALUES (?, ?, ?, ?, ?)",
            (key, model, prompt, body, time.time()),
        )
        return self.get(key)

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
