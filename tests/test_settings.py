"""BIOIMAGEIO_* variables: malformed values are errors that name the variable."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from bioimageio_core.errors import SettingsError
from bioimageio_core.settings import get_settings

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tiny-nuclei-unet"


@pytest.mark.parametrize(
    ("variable", "raw", "words"),
    [
        ("BIOIMAGEIO_HTTP_TIMEOUT", "ten", "a number of seconds > 0"),
        ("BIOIMAGEIO_HTTP_TIMEOUT", "-1", "a number of seconds > 0"),
        ("BIOIMAGEIO_HTTP_TIMEOUT", "0", "a number of seconds > 0"),
        ("BIOIMAGEIO_HTTP_TIMEOUT", "nan", "a number of seconds > 0"),
        ("BIOIMAGEIO_HTTP_TIMEOUT", "inf", "a number of seconds > 0"),
        ("BIOIMAGEIO_HTTP_TOTAL_TIMEOUT", "-5", "a number of seconds > 0"),
        ("BIOIMAGEIO_HTTP_TOTAL_TIMEOUT", "NaN", "a number of seconds > 0"),
        ("BIOIMAGEIO_MAX_DOWNLOAD_BYTES", "8GB", "a whole number of bytes > 0"),
        ("BIOIMAGEIO_MAX_DOWNLOAD_BYTES", "-1", "a whole number of bytes > 0"),
        ("BIOIMAGEIO_MAX_DOWNLOAD_BYTES", "1.5", "a whole number of bytes > 0"),
        ("BIOIMAGEIO_MAX_YAML_BYTES", "", "a whole number of bytes > 0"),
        ("BIOIMAGEIO_MAX_YAML_BYTES", "0", "a whole number of bytes > 0"),
        ("BIOIMAGEIO_REMOTE_REQUEST_BYTES", "4MB", "a whole number of bytes > 0"),
        ("BIOIMAGEIO_PERFORM_IO_CHECKS", "maybe", "a boolean"),
        ("BIOIMAGEIO_ALLOW_REMOTE_CODE", "2", "a boolean"),
    ],
)
def test_malformed_variable_is_named(variable: str, raw: str, words: str) -> None:
    with pytest.raises(SettingsError, match=words) as info:
        get_settings({variable: raw})
    text = str(info.value)
    assert variable in text and repr(raw) in text
    assert isinstance(info.value, ValueError)  # callers catching ValueError keep working


def test_good_values_are_read() -> None:
    s = get_settings(
        {
            "BIOIMAGEIO_HTTP_TIMEOUT": " 2.5 ",
            "BIOIMAGEIO_HTTP_TOTAL_TIMEOUT": "60",
            "BIOIMAGEIO_MAX_DOWNLOAD_BYTES": "1_000",
            "BIOIMAGEIO_MAX_YAML_BYTES": "2048",
            "BIOIMAGEIO_REMOTE_REQUEST_BYTES": "1",
        }
    )
    assert (s.http_timeout, s.http_total_timeout) == (2.5, 60.0)
    assert (s.max_download_bytes, s.max_yaml_bytes, s.remote_request_bytes) == (1000, 2048, 1)


@settings(max_examples=80, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6))
def test_timeouts_are_finite_and_positive_or_rejected(value: float | str) -> None:
    raw = repr(value) if isinstance(value, float) else value
    try:
        timeout = get_settings({"BIOIMAGEIO_HTTP_TIMEOUT": raw}).http_timeout
    except SettingsError as e:
        assert "BIOIMAGEIO_HTTP_TIMEOUT" in str(e)
    else:
        assert math.isfinite(timeout) and timeout > 0


@pytest.mark.parametrize("command", [["empty-cache"], ["validate"], ["test"]])
def test_cli_reports_a_malformed_variable_in_one_line(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    from bioimageio_core.cli import main

    if command != ["empty-cache"]:
        command = [*command, str(EXAMPLE)]
    monkeypatch.setenv("BIOIMAGEIO_HTTP_TIMEOUT", "nan")
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 1
    assert "BIOIMAGEIO_HTTP_TIMEOUT" in result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
