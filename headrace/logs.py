"""Logging setup: human-readable by default, JSON lines for collectors (``--json-logs``)."""

from __future__ import annotations

import json
import logging
import sys
import time

# Libraries that log routine parse failures of hostile pages at ERROR; we count those ourselves.
_NOISY = ("trafilatura", "htmldate", "courlan", "justext", "readability", "kafka", "presidio-analyzer")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def setup_logging(verbose: int = 0, json_logs: bool = False) -> None:
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_logs else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.CRITICAL if verbose < 2 else logging.DEBUG)
    # warcio prints damage warnings with print(); they are reported by our reader instead.
