"""The cluster options refuse what cannot work on a cluster before anything is deployed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from testsupport.server import child_env

from ocrpipe.cluster.settings import RaySettings


def test_serve_on_ray_refuses_sqlite_with_a_clear_message(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    res = subprocess.run([sys.executable, "-m", "ocrpipe", "serve", "--ray", "127.0.0.1:1", "--data-dir",
                          str(tmp_path)], capture_output=True, text=True, timeout=120, env=child_env())
    assert res.returncode == 2
    assert "a Ray cluster needs a job store every node reaches: pass --database-url postgresql" in res.stderr


def test_replicas_are_fixed_or_an_autoscaling_range() -> None:
    assert RaySettings(ray_detector_replicas=2).replicas(2) == {"num_replicas": 2}
    auto = RaySettings(ray_max_replicas=4, ray_target_ongoing=3).replicas(1)
    assert auto == {"autoscaling_config": {"min_replicas": 1, "initial_replicas": 1, "max_replicas": 4,
                                           "target_ongoing_requests": 3.0}}
    with pytest.raises(ValidationError, match="ray_max_replicas"):
        RaySettings(ray_recognizer_replicas=3, ray_max_replicas=2)
