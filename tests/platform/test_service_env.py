"""The service's environment interface (app.contract.service_env): the platform sets what the API reads."""

from __future__ import annotations

import dataclasses

import pytest

from app.api.settings import Settings
from app.contract.pipeline import PIPELINE, PipelineSettings
from app.contract.service_env import (
    SERVICE_ENV,
    ConfigError,
    EnvVar,
    pipeline_values,
    read_env,
    render_env,
)


def test_every_variable_fills_a_settings_field() -> None:
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert {var.field for var in SERVICE_ENV} <= fields
    assert len({var.name for var in SERVICE_ENV}) == len(SERVICE_ENV)
    pipeline = {f.name for f in dataclasses.fields(PipelineSettings)}
    assert {var.pipeline for var in SERVICE_ENV if var.pipeline} <= pipeline


def test_render_then_read_gives_back_the_values() -> None:
    values = {
        "project_id": "p",
        **pipeline_values(PIPELINE),
        "bigquery_api_endpoint": "http://127.0.0.1:9050",
    }
    env = render_env(values)
    assert env["APP_TABLE"] == PIPELINE.table
    assert read_env(env) == values


def test_unset_and_empty_values_are_left_out() -> None:
    assert "BIGQUERY_API_ENDPOINT" not in render_env({"project_id": "p", "bigquery_api_endpoint": None})
    assert read_env({"APP_PROJECT_ID": "p", "APP_TOPIC": ""}) == {"project_id": "p"}


def test_unknown_fields_and_unparsable_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="not part of the service's environment interface: nope"):
        render_env({"nope": 1})
    # A typed setting added through the interface travels as text and is checked on read.
    monkeypatch.setattr(
        "app.contract.service_env.SERVICE_ENV",
        (*SERVICE_ENV, EnvVar("APP_EXAMPLE_LIMIT", "example_limit", int)),
    )
    with pytest.raises(ConfigError, match="APP_EXAMPLE_LIMIT holds 'lots'"):
        read_env({"APP_EXAMPLE_LIMIT": "lots"})
    assert read_env({"APP_EXAMPLE_LIMIT": "1000"}) == {"example_limit": 1000}


def test_settings_data_env_is_the_interface() -> None:
    settings = Settings(
        project_id="p",
        bigquery_api_endpoint="http://127.0.0.1:1",
        publishers=("serviceAccount:a@p.iam.gserviceaccount.com", "user:b@example.com"),
        token_audiences=("https://flights.example.com",),
        max_bytes_billed=12345678,
        synthetic_publishers=("serviceAccount:a@p.iam.gserviceaccount.com",),
    )
    assert read_env(settings.data_env()) == {var.field: getattr(settings, var.field) for var in SERVICE_ENV}
