"""Settings of the inference service: every limit in one place, with its default.

The limits bound what one request can cost (rows, samples, interpolation steps, history
length, body bytes) so that no single client can make the server spend minutes or
gigabytes; a request beyond a limit gets 413 (body) or 422 naming the limit.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MiB = 2**20


class ServeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="address to bind; anything but loopback needs an API key")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free port)")
    batching: bool = Field(True, description="batch concurrent requests to the same model and operation")
    batch_window_ms: float = Field(
        1.0, ge=0.0, le=100.0,
        description="how long the oldest queued request waits for others to join its batch")
    max_batch_rows: int = Field(256, ge=1, le=65536, description="rows in one batched forward pass")
    max_body_bytes: int = Field(4 * MiB, ge=1024, description="request body limit (413 beyond)")
    max_rows: int = Field(1024, ge=1, description="rows (inputs, codes, table rows) in one request")
    max_samples: int = Field(256, ge=1, description="samples drawn by one request")
    max_steps: int = Field(64, ge=2, description="points on one interpolation path")
    max_seq_len: int = Field(2048, ge=1, description="items in one recommender history (sequence length)")
    max_k: int = Field(1000, ge=1, description="recommendations in one answer")
    max_concurrency: int = Field(256, ge=1, description="requests in flight before the server answers 503")
    compute_threads: int = Field(1, ge=1, le=64, description="threads that run the models' forward passes")
    torch_threads: int = Field(1, ge=1, le=256, description="torch intra-op threads per forward pass")
    latent_map_points: int = Field(1000, ge=0, le=20000, description="data points shown on the latent map")
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = Field(
        "warning", description="uvicorn log level")
    idle_timeout_s: float = Field(5.0, gt=0, le=3600, description="seconds a connection may stay open without "
                                                                  "sending anything, new or between requests")
