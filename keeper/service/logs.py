"""Logging: JSON lines when not on a terminal, readable lines on one (structlog).

Every action is logged with its task, account, reason and signature. Keys and secrets are
never passed to a logger; RPC URLs are redacted by the chain layer before they get here.
Libraries that log through the standard library (APScheduler: "skipped: maximum number of
running instances reached", "missed") are rendered by the same structlog renderer, so
every line on stderr has one format.
"""

from __future__ import annotations

import logging
import sys
from enum import Enum
from typing import Literal, TextIO

import structlog

LogFormat = Literal["auto", "json", "console"]


def _plain(value: object) -> object:
    """Enums as their values, also as keys and inside containers (the console renderer
    would show ``<Reason.RUN_NOT_TIMED_OUT: 'run_not_timed_out'>``)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    return value


def plain_values(
    _logger: object, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """A structlog processor: every value as plain data (the same words as the metrics)."""
    return {key: _plain(value) for key, value in event.items()}


def configure_logging(
    level: str = "INFO", fmt: LogFormat = "auto", stream: TextIO | None = None
) -> None:
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            plain_values,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    _route_stdlib("apscheduler", logging.getLevelName(level), renderer, out)


def _route_stdlib(name: str, level: int, renderer: structlog.typing.Processor, out: TextIO) -> None:
    """Render the stdlib logger ``name`` like the keeper's own lines, on the same stream.

    Below DEBUG only its warnings pass: APScheduler's INFO lines ("Running job", "executed
    successfully") repeat every tick and say less than the keeper's own pass lines.
    """
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    logger = logging.getLogger(name)
    logger.handlers = [handler]  # configuring again replaces, never duplicates
    logger.setLevel(logging.DEBUG if level <= logging.DEBUG else max(level, logging.WARNING))
    logger.propagate = False


def get_logger(name: str = "keeper") -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
