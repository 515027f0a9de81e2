"""Config pieces added for operations: the ops section, secrets from env vars, the digest."""

from __future__ import annotations

import pytest

from headrace.config import ConfigError, load_config


def test_string_settings_from_env_are_taken_verbatim() -> None:
    cfg = load_config(
        environ={
            "HEADRACE_KAFKA__SASL_PASSWORD": "12345",  # from a Kubernetes Secret: not a number
            "HEADRACE_KAFKA__SASL_USERNAME": "[svc]",  # not a TOML list
            "HEADRACE_BUS__PARTITIONS": "8",  # numbers still parse
            "HEADRACE_OPS__STALL_AFTER_S": "2.5",
        }
    )
    assert cfg.kafka.sasl_password == "12345"
    assert cfg.kafka.sasl_username == "[svc]"
    assert cfg.bus.partitions == 8
    assert cfg.ops.stall_after_s == 2.5


def test_ops_section_is_validated() -> None:
    with pytest.raises(ConfigError):
        load_config(environ={"HEADRACE_OPS__SHUTDOWN_MARGIN_S": "40"})  # margin >= grace (30)
    with pytest.raises(ConfigError):
        load_config(environ={"HEADRACE_OPS__METRICS_PORT": "70000"})
    with pytest.raises(ConfigError, match="unknown config key"):
        load_config(environ={"HEADRACE_OPS__METRICS_PROT": "9400"})
    assert load_config(environ={}).ops.shutdown_deadline_s == 25.0


def test_ops_settings_do_not_change_the_pipeline_digest() -> None:
    base = load_config(environ={})
    assert load_config(environ={"HEADRACE_OPS__METRICS_PORT": "9400"}).digest() == base.digest()
    assert load_config(environ={"HEADRACE_BUS__BATCH_SIZE": "7"}).digest() != base.digest()


def test_nested_sections_from_env() -> None:
    cfg = load_config(
        environ={
            "HEADRACE_QUALITY__C4__ENABLED": "false",
            "HEADRACE_QUALITY__GOPHER_QUALITY__MIN_DOC_WORDS": "10",
            "HEADRACE_CRAWL__ROBOTS__UNREACHABLE_FALLBACK": "allow",  # a nested string
        }
    )
    assert cfg.quality.c4.enabled is False
    assert cfg.quality.gopher_quality.min_doc_words == 10
    assert cfg.quality.fineweb.enabled is True
    assert cfg.crawl.robots.unreachable_fallback == "allow"
    with pytest.raises(ConfigError, match="unknown config key"):
        load_config(environ={"HEADRACE_QUALITY__C4__ENABLD": "false"})
