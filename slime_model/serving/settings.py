"""What a server allows: batching, authentication, where images may come from and how big they may be."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

API_KEY_ENV = "SLIME_API_KEY"


class ServeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_name: str = Field(min_length=1, description="the id clients send as `model` and /v1/models lists")
    api_key: SecretStr | None = None  # None: no authentication
    max_batch: int = Field(8, ge=1, description="requests run together as one padded batch")
    max_wait_ms: float = Field(20.0, ge=0, description="longest a request waits for others to join its batch")
    max_queue: int = Field(256, ge=1, description="requests waiting beyond this are refused with 503")
    allow_image_dir: Path | None = None  # local image files only below this folder
    allow_remote_images: bool = False  # http(s) image URLs (server-side request forgery if open)
    max_images: int = Field(4, ge=0, description="images per request")
    max_image_bytes: int = Field(20_000_000, ge=1, description="encoded size of one image")
    max_image_pixels: int = Field(40_000_000, ge=1, description="width x height of one image (decompression bombs)")
    remote_timeout_s: float = Field(10.0, gt=0, description="whole download of one remote image")
    default_max_tokens: int = Field(512, ge=1, description="answer length when a request sets no max_tokens")
    shutdown_timeout_s: float = Field(30.0, ge=0, description="on SIGTERM, time in-flight requests get to finish")

    def max_body_bytes(self) -> int:
        """Largest request body: every image base64-encoded (4/3) plus 1 MB of text."""
        return self.max_images * (self.max_image_bytes * 4 // 3 + 64) + 1_000_000
