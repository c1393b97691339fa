"""``RunLease``: one ``Workflow`` object's lease on its run, as the engine keeps it between the
store's answers (the store's side is :mod:`ruvon.providers.leases`).

The store states a lease's end on its own clock. The engine never compares that time with its
own clock: it remembers when (on this process's monotonic clock) the store granted or renewed
the lease, and derives from the elapsed time both whether the lease is still safely held and
the end to write with a commit that keeps it (the granted end moved on by the time elapsed
since). Clock skew between processes and the database therefore does not matter.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["RunLease"]

_DRIVERS = itertools.count(1)
_HOST = socket.gethostname()


class RunLease:
    """The lease of one driver (a ``Workflow`` object) on its run.

    Args:
        holder: Who drives, e.g. the process's worker id (unique to the process; default
            ``<hostname>-<pid>``); a numbered suffix makes each object a driver of its own, so
            two objects of one run in one process exclude each other too.
        seconds: How long a claim or renewal holds the run.
    """

    __slots__ = ("_at", "_end", "held", "owner", "seconds")

    def __init__(self, holder: str | None, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"lease seconds must be > 0, got {seconds!r}")
        driver = holder if holder is not None else f"{_HOST}-{os.getpid()}"
        self.owner = f"{driver}/{next(_DRIVERS):x}"
        """The owner written into the row while this object drives the run."""
        self.seconds = float(seconds)
        self.held = False
        """Whether the last word of the store was that this object holds the lease."""
        self._end: datetime | None = None
        self._at = 0.0

    @classmethod
    def for_services(cls, services: Any) -> RunLease:
        """The lease of a driver with these ``StepServices``: held by the step monitor's worker
        (or this process), for ``services.lease_seconds``."""
        return cls(getattr(services.monitor, "worker_id", None), services.lease_seconds)

    def starting(self) -> datetime:
        """The end of a lease taken with the row it is written into (a workflow created to be
        driven at once): ``seconds`` from now on this process's clock, the only clock at hand
        before the row exists. Call :meth:`granted` with it once the row is stored."""
        return datetime.now(timezone.utc) + timedelta(seconds=self.seconds)

    def granted(self, end: datetime) -> None:
        """The store granted or renewed the lease until ``end`` (its clock), just now."""
        self._end, self._at, self.held = end, time.monotonic(), True

    def released(self) -> None:
        """The lease was released (or lost)."""
        self.held = False

    def fresh(self) -> bool:
        """Held, with more than half of its time left: safe to start a step under it."""
        return self.held and time.monotonic() - self._at < self.seconds / 2

    def extended(self) -> datetime | None:
        """The end of the lease renewed now (the store's clock), for a commit that keeps it;
        ``None`` if it is not held. Within the first quarter of the lease the end is left as
        it is."""
        end = self._end
        if not self.held or end is None:
            return None
        now = time.monotonic()
        elapsed = now - self._at
        if elapsed < self.seconds / 4:
            return end  # three quarters or more left: the end stands (saves the arithmetic)
        end += timedelta(seconds=elapsed)
        self._end, self._at = end, now
        return end
