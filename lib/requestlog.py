"""One structured JSON line per request, in Cloud Logging's format; never a key or prompt text."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_TRACE_CONTEXT = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d+))?")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
_USAGE_FIELDS = (
    "promptTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "cachedContentTokenCount",
    "toolUsePromptTokenCount",
    "totalTokenCount",
)


class JsonFormatter(logging.Formatter):
    """Cloud Logging structured lines: `severity`, `message`, and any `fields` given."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        entry.setdefault("logger", record.name)
        return json.dumps(entry, separators=(",", ":"), default=str)


def configure_logging(level: str = "INFO") -> logging.Logger:
    """The `streamgate` logger, writing JSON lines to stdout (set up once per process)."""
    logger = logging.getLogger("streamgate")
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level.upper())
    return logger


def trace_fields(headers: Mapping[str, str], project: str) -> dict[str, str]:
    """Cloud Logging trace fields from `X-Cloud-Trace-Context` or W3C `traceparent`."""
    match = _TRACE_CONTEXT.match(headers.get("x-cloud-trace-context", ""))
    trace, span = (match.group(1), match.group(2)) if match else (None, None)
    w3c = _TRACEPARENT.match(headers.get("traceparent", "").strip())
    if trace is None and w3c:
        trace, span = w3c.group(1), w3c.group(2)
    if trace is None:
        return {}
    fields = {
        "logging.googleapis.com/trace": f"projects/{project}/traces/{trace}"
        if project
        else trace
    }
    if span:
        fields["logging.googleapis.com/spanId"] = span
    return fields


def usage_from(event: bytes | None) -> dict[str, int]:
    """Token counts from the chunk that carried the last `usageMetadata`."""
    if not event:
        return {}
    try:
        usage = json.loads(event).get("usageMetadata", {})
    except (ValueError, AttributeError):
        return {}
    return {k: usage[k] for k in _USAGE_FIELDS if isinstance(usage.get(k), int)}


@dataclass
class RequestLog:
    """What is known about one request so far; `emit` writes it as one line."""

    request_id: str
    method: str
    path: str
    trace: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    family: str = ""
    model: str = ""
    key_id: str = ""
    # The upstreams asked, in order; the last one served when the status is 200.
    upstreams: list[str] = field(default_factory=list)
    status: int = 0
    first_byte: float | None = None
    chunks: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    outcome: str = "ok"
    error: str = ""

    def emit(self, logger: logging.Logger) -> None:
        duration = time.monotonic() - self.started
        severity = (
            logging.ERROR
            if self.status >= 500 or self.outcome == "error"
            else logging.INFO
        )
        if 400 <= self.status < 500 or self.outcome == "disconnected":
            severity = logging.WARNING
        ttfb = (
            None
            if self.first_byte is None
            else round((self.first_byte - self.started) * 1000, 2)
        )
        fields = {
            "httpRequest": {
                "requestMethod": self.method,
                "requestUrl": self.path,
                "status": self.status,
                "latency": f"{duration:.6f}s",
            },
            "requestId": self.request_id,
            "keyId": self.key_id,
            "routeFamily": self.family,
            "model": self.model,
            "upstream": self.upstreams[-1]
            if self.upstreams and self.status == 200
            else "",
            "upstreamTries": len(self.upstreams),
            "ttfbMs": ttfb,
            "durationMs": round(duration * 1000, 2),
            "chunks": self.chunks,
            "usage": self.usage,
            "outcome": self.outcome,
            **self.trace,
        }
        if len(self.upstreams) > 1:
            fields["upstreamsTried"] = self.upstreams
        if self.error:
            fields["error"] = self.error
        message = f"{self.method} {self.family or '-'} {self.model or '-'} {self.status} {self.outcome}"
        if logger.isEnabledFor(severity):
            # makeRecord + handle: `logger.log` would walk the stack for a caller nobody reads.
            record = logger.makeRecord(
                logger.name, severity, __file__, 0, message, (), None,
                extra={"fields": fields},
            )  # fmt: skip
            logger.handle(record)
