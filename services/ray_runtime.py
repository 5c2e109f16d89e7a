"""Join the Ray cluster the user points at, or start a local one for the duration of a command.

Token authentication stays on (Ray's default). The dashboard binds to 127.0.0.1 unless the user
sets RAY_DASHBOARD_HOST.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Optional

import ray


@contextlib.contextmanager
def ray_session(address: Optional[str] = None, num_cpus: Optional[int] = None, dashboard: bool = False) -> Iterator[None]:
    """Use a running Ray (already initialised, `address`, or RAY_ADDRESS); else start one and stop it after."""
    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=dashboard,
            dashboard_host=os.environ.get("RAY_DASHBOARD_HOST", "127.0.0.1"),
            log_to_driver=True,
            configure_logging=True,
            logging_level="WARNING",
        )
    try:
        yield
    finally:
        ray.shutdown()
