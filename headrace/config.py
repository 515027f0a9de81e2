"""Pipeline configuration: one TOML file, overridden by ``HEADRACE_*`` variables and CLI flags.

Each component owns its config dataclass (``consumers.extract.ExtractConfig``, ...); this module only
composes them, so components never import the composition root. Values are validated by type when
loaded (``msgspec.convert``), and the effective config is hashed into every shard manifest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import tomllib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import msgspec

from consumers.decontam import DecontamConfig
from consumers.dedup.stage import DedupConfig
from consumers.extract import ExtractConfig
from consumers.language import LanguageConfig
from consumers.pii import PiiConfig
from consumers.quality.config import QualityConfig
from consumers.shards.sink import ShardConfig
from crawler.crawl_config import CrawlConfig
from crawler.replay_config import ReplayConfig
from headrace.ops.config import OpsConfig
from headrace.report.config import GateConfig
from streams.kafka import KafkaSettings

log = logging.getLogger(__name__)

ENV_PREFIX = "HEADRACE_"


class ConfigError(ValueError):
    """The configuration file or an override is invalid."""


@dataclass(frozen=True)
class BusConfig:
    partitions: int = 4
    topic_prefix: str = ""
    batch_size: int = 256  # messages per poll / per transaction


@dataclass(frozen=True)
class PipelineConfig:
    bus: BusConfig = field(default_factory=BusConfig)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    decontam: DecontamConfig = field(default_factory=DecontamConfig)
    pii: PiiConfig = field(default_factory=PiiConfig)
    shards: ShardConfig = field(default_factory=ShardConfig)
    ops: OpsConfig = field(default_factory=OpsConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    crawl: CrawlConfig = field(default_factory=CrawlConfig)
    report: GateConfig = field(default_factory=GateConfig)

    def digest(self) -> str:
        """Stable hash of the effective config (secrets, ops settings and report gates excluded: they
        change no data)."""
        data = msgspec.to_builtins(self)
        data.get("kafka", {}).pop("sasl_password", None)
        data.pop("ops", None)
        data.pop("report", None)
        blob = msgspec.json.encode(data, order="sorted")
        return hashlib.sha256(blob).hexdigest()[:12]

    def redacted(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        if data.get("kafka", {}).get("sasl_password"):
            data["kafka"]["sasl_password"] = "***"  # noqa: S105 - a mask, not a password
        return data


def _parse_scalar(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _is_text_field(path: Sequence[str]) -> bool:
    """Whether ``PipelineConfig.<path...>`` holds a string (``str`` or ``str | None``)."""
    cls: Any = PipelineConfig
    hint: Any = None
    for name in path:
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            return False
        hint = typing.get_type_hints(cls).get(name)
        cls = hint
    return hint is str or (hint is not None and set(typing.get_args(hint)) == {str, type(None)})


def env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``HEADRACE_SECTION__KEY=value`` -> ``{section: {key: value}}``; deeper sections nest the same
    way (``HEADRACE_QUALITY__C4__ENABLED=false``). Values are parsed as TOML, except for string
    settings, which are taken verbatim: a password such as ``12345`` or ``[x]`` (from a Kubernetes
    Secret) must not turn into a number or a list."""
    out: dict[str, dict[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [p for p in name[len(ENV_PREFIX) :].lower().split("__")]
        if any(not p for p in path):
            continue
        node: dict[str, Any] = out.setdefault(path[0], {})
        for part in path[1:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[path[-1]] = raw if _is_text_field(path) else _parse_scalar(raw)
    return out


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(merged.get(k), dict):
            merged[k] = _merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def _check_keys(data: Mapping[str, Any], cls: type, where: str = "") -> None:
    """Reject unknown keys: a typo in a threshold must not silently fall back to the default."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"unknown config key {where}{key!r} (known: {', '.join(sorted(known))})")
        target = hints.get(key)
        if isinstance(value, Mapping) and isinstance(target, type) and dataclasses.is_dataclass(target):
            _check_keys(value, target, f"{where}{key}.")


def load_config(
    path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> PipelineConfig:
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
    data = _merge(data, env_overrides(os.environ if environ is None else environ))
    if overrides:
        data = _merge(data, overrides)
    _check_keys(data, PipelineConfig)
    try:
        return msgspec.convert(data, PipelineConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc


def with_section(config: PipelineConfig, **sections: Any) -> PipelineConfig:
    return replace(config, **sections)
