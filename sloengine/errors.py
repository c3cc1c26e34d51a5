"""One exception tree for the whole engine (ARCHITECTURE.md rule 5).

    SloEngineError
    ├── TransientError            retry later (a locked file, a server that is down)
    │   └── SourceUnavailable
    └── TerminalError             report and stop (bad input, bad settings, bad query)
        ├── ConfigError           settings or SLO documents that do not validate
        ├── DecodeError           bytes that are not the format they claim to be
        ├── StoreError            the database refused (schema, read-only, locked)
        └── QueryRefused          a statement a read-only front door must not run

Each front door translates these once: the CLI prints one line and exits non-zero,
the API answers problem+json, the scheduler retries transient errors.
"""

from __future__ import annotations


class SloEngineError(Exception):
    """Base of every error the engine raises on purpose."""

    transient: bool = False

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class TransientError(SloEngineError):
    """Worth retrying: the same call may succeed later."""

    transient = True


class SourceUnavailable(TransientError):
    """A data source (a Prometheus server, a file share) did not answer."""


class TerminalError(SloEngineError):
    """Retrying will not help; report it."""


class ConfigError(TerminalError):
    """Settings or an SLO document did not validate."""


class DecodeError(TerminalError):
    """Input bytes are not what they claim to be (the `where` names file and line)."""


class StoreError(TerminalError):
    """The database refused an operation."""


class QueryRefused(TerminalError):
    """A statement that a read-only front door must not run."""


__all__ = [
    "ConfigError",
    "DecodeError",
    "QueryRefused",
    "SloEngineError",
    "SourceUnavailable",
    "StoreError",
    "TerminalError",
    "TransientError",
]
