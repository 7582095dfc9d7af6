"""Logging for every command, set up once by the CLI: level, text or JSON lines, quiet libraries.

SHOUWANG_LOG_LEVEL: the level of Shouwang's own loggers (DEBUG, INFO, WARNING, ERROR; default
    INFO, DEBUG with -v). The client libraries (aiokafka, faust, mode, asyncio, kafka) log at
    WARNING unless the level is DEBUG: their INFO lines (aiokafka lists every assigned
    partition at each rebalance; mode's services announce each start and stop, also those of
    our own faust subclasses) drown a command's own output. A comma-separated list sets one
    logger: `INFO,aiokafka=INFO` keeps the default and lets aiokafka's INFO through.
SHOUWANG_LOG_FORMAT: `text` (default; one line per record, no colours or escape codes) or
    `json` (one JSON object per line: time, level, logger, message, and exc_info when there is
    one) for a log collector.

Both are read once, here; the CLI's --log-level and --log-format override them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

from services.platform.config import SettingsError

LEVEL_ENV = "SHOUWANG_LOG_LEVEL"
FORMAT_ENV = "SHOUWANG_LOG_FORMAT"
FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Loggers of client libraries whose INFO is chatter for an operator; WARNING unless asked.
QUIET_LIBRARIES = ("aiokafka", "kafka", "faust", "mode", "asyncio")
_HANDLER_NAME = "shouwang"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class LogSettings:
    """The root level, per-logger levels (`name=LEVEL` items) and the line format."""

    level: str = "INFO"
    loggers: Mapping[str, str] = field(default_factory=dict)
    format: str = "text"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LogSettings:
        env = os.environ if environ is None else environ
        return cls.parse(env.get(LEVEL_ENV) or "", env.get(FORMAT_ENV) or "", LEVEL_ENV, FORMAT_ENV)

    @classmethod
    def parse(
        cls, level_spec: str, format_name: str, level_source: str, format_source: str
    ) -> LogSettings:
        """Parse a level spec and a format name; SettingsError names the source of a bad one."""
        level, loggers = cls.level, {}
        for item in (part.strip() for part in level_spec.split(",")):
            if not item:
                continue
            name, sep, value = item.rpartition("=")
            value = value.strip().upper()
            if value not in LEVELS:
                raise SettingsError(
                    f"{level_source}={level_spec!r}: {value or item!r} is not one of "
                    f"{', '.join(LEVELS)}"
                )
            if sep:
                if not name.strip():
                    raise SettingsError(f"{level_source}={level_spec!r}: a logger name before =")
                loggers[name.strip()] = value
            else:
                level = value
        fmt = (format_name or cls.format).strip().lower()
        if fmt not in FORMATS:
            raise SettingsError(
                f"{format_source}={format_name!r}: expected one of {', '.join(FORMATS)}"
            )
        return cls(level=level, loggers=loggers, format=fmt)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages escaped by JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _ServiceChatter(logging.Filter):
    """Drops mode's service lifecycle lines ("[^--Consumer]: Starting...") below `level`.

    faust's services log through the logger of the module that defines them, so those of our
    own subclasses (platform/kafka/faust) carry a services.* name; mode labels each such line
    `[^...]`, which tells them from our own lines in those modules.
    """

    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.level or not isinstance(record.msg, str):
            return True
        return not record.msg.startswith("[^")


def configure(settings: LogSettings, stream: TextIO | None = None) -> logging.Handler:
    """Install one handler on the root logger (replacing any), and the levels of `settings`."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(
        JsonFormatter() if settings.format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    # Ours replaced (configure may run twice in one process: tests), others' left alone.
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level)
    library_level = "DEBUG" if settings.level == "DEBUG" else "WARNING"
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(settings.loggers.get(name, library_level))
    handler.addFilter(
        _ServiceChatter(logging.getLevelName(settings.loggers.get("mode", library_level)))
    )
    for name, level in settings.loggers.items():
        logging.getLogger(name).setLevel(level)
    # Warnings (deprecations from libraries, unclosed resources) go through the same handler.
    logging.captureWarnings(True)
    return handler


def is_terminal(stream: TextIO) -> bool:
    """Whether `stream` is an interactive terminal: only then may anything write escape codes."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False
