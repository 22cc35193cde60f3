"""The cluster options of ``ocrpipe serve --ray`` and ``ocrpipe batch --ray`` (flags and ``OCRPIPE_*``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ClusterSettings(BaseSettings):
    """Where the cluster is and what the detector and recogniser workers reserve (serve and batch alike)."""

    model_config = SettingsConfigDict(env_prefix="OCRPIPE_", extra="ignore", frozen=True,
                                      use_attribute_docstrings=True)

    ray: str | None = None
    """address of a running Ray cluster (HOST:PORT of `ray start --head`, or `auto`); none: no cluster"""
    ray_namespace: str = "ocrpipe"
    """Ray namespace of the service's deployments and the bulk jobs"""
    ray_detector_cpus: float = Field(default=1.0, ge=0)
    """CPUs Ray reserves for each detector replica (and each detector actor of `batch --ray`)"""
    ray_recognizer_cpus: float = Field(default=1.0, ge=0)
    """CPUs Ray reserves for each recogniser replica (and each recogniser actor of `batch --ray`)"""


class RaySettings(ClusterSettings):
    """``ocrpipe serve --ray``: the cluster and how the deployments are sized."""

    ray_ingress_replicas: int = Field(default=1, ge=1, le=256)
    """replicas of the ingress deployment (the FastAPI app, its job workers and page threads)"""
    ray_detector_replicas: int = Field(default=1, ge=1, le=256)
    """replicas of the detector deployment (decode, detect, crop, order; Tesseract re-reads)"""
    ray_recognizer_replicas: int = Field(default=1, ge=1, le=256)
    """replicas of the recogniser deployment (the neural model behind @serve.batch)"""
    ray_max_replicas: int = Field(default=0, ge=0, le=1024)
    """autoscale the detector and recogniser deployments from their replica count up to this many
    (0: fixed replica counts)"""
    ray_target_ongoing: float = Field(default=4.0, gt=0)
    """autoscaling target: requests in progress per replica"""
    ray_max_concurrent_batches: int = Field(default=1, ge=1, le=64)
    """recognition batches one recogniser replica runs at once (@serve.batch max_concurrent_batches)"""
    ray_ingress_cpus: float = Field(default=0.5, ge=0)
    """CPUs Ray reserves for each ingress replica"""
    ray_http_host: str | None = None
    """address the Serve HTTP proxies bind (default: --host)"""
    ray_request_timeout_s: float = Field(default=0.0, ge=0)
    """end-to-end time limit of one HTTP request at the Serve proxy, answered 408 by Ray (0: header + body +
    sync timeouts + 60 s)"""

    @model_validator(mode="after")
    def _bounds(self) -> RaySettings:
        top = max(self.ray_detector_replicas, self.ray_recognizer_replicas)
        if self.ray_max_replicas and self.ray_max_replicas < top:
            raise ValueError("ray_max_replicas must be 0 or at least the detector and recogniser replica counts")
        return self

    def replicas(self, initial: int) -> dict[str, Any]:
        """Deployment options for a deployment starting at ``initial`` replicas: a fixed count, or an
        autoscaling range up to ``ray_max_replicas``."""
        if not self.ray_max_replicas:
            return {"num_replicas": initial}
        return {"autoscaling_config": {"min_replicas": initial, "initial_replicas": initial,
                                       "max_replicas": self.ray_max_replicas,
                                       "target_ongoing_requests": self.ray_target_ongoing}}


class RayBulkSettings(ClusterSettings):
    """``ocrpipe batch --ray``: the cluster options and the sizes of the bulk run's two actor pools."""

    det_actors: int = Field(default=0, ge=0, le=1024)
    """detector actors of `batch --ray` (decode's output is detected and cut into line crops there), each
    reserving --ray-detector-cpus (0: --jobs)"""
    rec_actors: int = Field(default=0, ge=0, le=1024)
    """recogniser actors of `batch --ray` (line crops of several files read in one batch), each reserving
    --ray-recognizer-cpus (0: one per 4 detector actors, at least one)"""
    rec_batch_files: int = Field(default=1, ge=1, le=256)
    """files one recogniser actor takes per call (more: fewer calls, but a file waits for the others of its
    call; with --rec-pool-pages their crops share batches)"""
    rec_pool_pages: bool = False
    """read the crops of all those files' pages in one recogniser call (fuller batches, for a GPU; a crop
    padded with other pages' crops may read with other confidences, rarely another character, than
    `ocrpipe ocr` gives); off: each page's crops are one call, and every Document equals `ocrpipe ocr`'s"""

    def pools(self, jobs: int) -> tuple[int, int]:
        """(detector actors, recogniser actors) for ``--jobs jobs``."""
        det = self.det_actors or jobs
        return det, self.rec_actors or max(1, det // 4)
