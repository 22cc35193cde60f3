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


def _serve_parser():  # type: ignore[no-untyped-def]
    import argparse

    from ocrpipe.server.cli import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser


def test_every_setting_is_a_flag_and_an_environment_variable() -> None:
    from ocrpipe.server.security.settings import SecuritySettings
    from ocrpipe.settings import env_name, flag_name

    parser = _serve_parser()
    flags = {s for action in parser._actions for s in action.option_strings}
    for model in (ServiceSettings, SecuritySettings):
        for name in model.model_fields:
            assert flag_name(name) in flags, name
            assert env_name(model, name) == "OCRPIPE_" + name.upper()
    # the flags the README and older scripts use are still there
    for old in ("--host", "--port", "--database-url", "--data-dir", "--recognizer", "--batching", "--no-batching",
                "--max-batch-size", "--max-batch-width", "--batch-threads", "--max-wait-ms", "--workers",
                "--threads", "--job-workers", "--template-workers", "--grpc-port", "--grpc-workers",
                "--webhook-url", "--log-level", "--tls-cert", "--tls-key", "--tls-client-ca", "--auth",
                "--insecure", "--rate-limit-per-min", "--metrics-auth"):
        assert old in flags, old


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from ocrpipe.settings import from_args

    monkeypatch.setenv("OCRPIPE_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("OCRPIPE_THREADS", "3")
    monkeypatch.setenv("OCRPIPE_PDF_DPI", "150")
    s = from_args(ServiceSettings, _serve_parser().parse_args(["--max-batch-size", "16", "--no-batching"]))
    assert s.max_batch_size == 16 and not s.batching  # flags
    assert s.threads == 3 and s.pdf_dpi == 150  # environment
    assert s.max_wait_ms == 10.0  # default


def test_one_pipeline_config_for_ocr_and_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    from ocrpipe.cli import build_parser
    from ocrpipe.settings import OcrSettings, from_args, pipeline_config

    monkeypatch.setenv("OCRPIPE_TESSERACT_THREADS", "2")
    args = build_parser().parse_args(["ocr", "x.png", "--dpi", "300", "--deskew", "--threads", "4",
                                      "--recognizer", "tesseract", "--ort-spin"])
    cli = pipeline_config(from_args(OcrSettings, args))
    assert (cli.pdf_dpi, cli.preprocess.deskew, cli.threads, cli.recognizer) == (300, True, 4, "tesseract")
    assert cli.ort_spin and cli.tesseract_threads == 2 and cli.session.intra_op_threads == 4
    served = pipeline_config(from_args(ServiceSettings, _serve_parser().parse_args(
        ["--pdf-dpi", "300", "--deskew", "--threads", "4", "--recognizer", "tesseract", "--ort-spin"])))
    assert served.limits.max_pages == 50  # the service's own limits ...
    assert {k: v for k, v in vars(served).items() if k != "limits"} == \
        {k: v for k, v in vars(cli).items() if k != "limits"}  # ... and otherwise the same engine


def test_ocr_refuses_invalid_settings_with_exit_code_2(capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from ocrpipe.cli import main

    assert main(["ocr", "--threads", "-1", "x.png"]) == 2
    assert "threads (--threads, OCRPIPE_THREADS)" in capsys.readouterr().err
    monkeypatch.setenv("OCRPIPE_PDF_DPI", "10")
    assert main(["ocr", "x.png"]) == 2
    assert "OCRPIPE_PDF_DPI" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["ocr", "--device", "tpu", "x.png"])
    assert exit_.value.code == 2
