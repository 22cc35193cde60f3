"""Settings are validated once, at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ocrpipe.server.settings import ServiceSettings


def test_defaults_and_sqlite_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("OCRPIPE_PORT", "OCRPIPE_HOST", "OCRPIPE_DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)
    s = ServiceSettings(data_dir=tmp_path)
    assert s.host == "127.0.0.1" and s.port == 8000 and s.batching
    assert s.db_url == f"sqlite:///{(tmp_path / 'ocrpipe.db').resolve()}"


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCRPIPE_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("OCRPIPE_BATCHING", "false")
    s = ServiceSettings()
    assert s.max_batch_size == 8 and not s.batching


@pytest.mark.parametrize("bad", [
    {"port": 70000}, {"max_batch_size": 0}, {"database_url": "mysql://x"}, {"sequential_unit": "line"},
    {"max_batch_size": 64, "max_queue": 10}, {"log_level": "LOUD"}, {"workers": 0},
])
def test_invalid_values_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        ServiceSettings(**bad)


def test_serve_refuses_invalid_settings_with_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    from ocrpipe.cli import main

    assert main(["serve", "--max-batch-size", "0"]) == 2
    assert "max_batch_size" in capsys.readouterr().err
