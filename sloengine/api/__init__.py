"""The HTTP front door: the OTLP/HTTP receiver (routes, durable spool, drain into the one
writer). ``sloengine run`` serves it beside the scheduled jobs (scheduler.py)."""

from sloengine.api.app import HttpServer, build_app
from sloengine.api.receiver import Receiver
from sloengine.api.spool import Spool, SpoolCorrupt, SpoolFull

__all__ = ["HttpServer", "Receiver", "Spool", "SpoolCorrupt", "SpoolFull", "build_app"]
