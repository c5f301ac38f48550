"""Output files get the mode the user's umask gives every other file.

The safetensors writer creates its files with mode 0600 whatever the umask (``model.safetensors``
from ``save_pretrained``, ``save_file``), so a checkpoint written for a shared group could not be
read by it. Every place that writes safetensors calls ``follow_umask`` afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    """The process umask, read without changing it (``os.umask`` can only set it, racing other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: Path) -> None:
    """``path`` (a file, or every ``*.safetensors`` in a folder) gets mode ``0666 & ~umask``."""
    path = Path(path)
    mode = 0o666 & ~current_umask()
    for file in sorted(path.glob("*.safetensors")) if path.is_dir() else [path]:
        os.chmod(file, mode)
