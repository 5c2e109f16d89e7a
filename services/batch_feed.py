"""Consumer side of the queue: training batches ready before the trainer asks for them.

A background thread pulls generator batches from the Ray queue (one blocking `get`, then whatever
else is already there with `get_nowait_batch`), cuts them into training batches of exactly
`batch_size` patterns (generator and training batch sizes are independent), and keeps up to
`prefetch_batches` of them in a local bounded buffer. The trainer's step therefore never waits on a
single remote `get`; the Trainer's `tf.data` prefetch sits on top (`Trainer.input_pipeline`).

`stalls` records every wait of the trainer for a batch longer than `STALL_S`: the reliability test
reads it to show that killing a generator does not stop training.
"""

from __future__ import annotations

import queue as local_queue
import threading
import time
from collections.abc import Iterator
from typing import Optional

import numpy as np
from ray.util.queue import Empty, Queue

GET_TIMEOUT_S = 1.0
STALL_S = 0.5


class QueueFeed:
    """Iterator of (x float32 (batch_size, n_points), y int32 (batch_size,)) from a Ray queue."""

    def __init__(self, queue: Queue, batch_size: int, prefetch_batches: int):
        self.queue = queue
        self.batch_size = int(batch_size)
        self._buffer: local_queue.Queue = local_queue.Queue(maxsize=max(1, prefetch_batches))
        self._stop = threading.Event()
        self._error: Optional[BaseException] = None
        self.batches_delivered = 0
        self.items_received = 0
        self.stalls: list[tuple[float, float]] = []  # (time.time() when the wait ended, seconds waited)
        self._thread = threading.Thread(target=self._fill, name="queue-feed", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------------------- producer thread
    def _pull(self) -> list:
        """At least one generator batch (blocking, in GET_TIMEOUT_S slices), plus any already waiting."""
        while not self._stop.is_set():
            try:
                items = [self.queue.get(block=True, timeout=GET_TIMEOUT_S)]
            except Empty:
                continue
            waiting = self.queue.qsize()
            if waiting:
                try:
                    items += self.queue.get_nowait_batch(waiting)
                except Empty:  # another consumer took them
                    pass
            return items
        return []

    def _fill(self) -> None:
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        held = 0
        try:
            while not self._stop.is_set():
                for x, y in self._pull():
                    xs.append(x)
                    ys.append(y)
                    held += len(y)
                    self.items_received += 1
                while held >= self.batch_size and not self._stop.is_set():
                    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
                    batch = (x_all[: self.batch_size], y_all[: self.batch_size].astype(np.int32))
                    xs, ys = [x_all[self.batch_size :]], [y_all[self.batch_size :]]
                    held -= self.batch_size
                    while not self._stop.is_set():
                        try:
                            self._buffer.put(batch, timeout=GET_TIMEOUT_S)
                            break
                        except local_queue.Full:
                            continue
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            self._error = exc

    # ------------------------------------------------------------------------------- consumer side
    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        t0 = time.perf_counter()
        while True:
            if self._error is not None:
                raise RuntimeError(f"queue feed failed: {self._error!r}") from self._error
            try:
                batch = self._buffer.get(timeout=GET_TIMEOUT_S)
                break
            except local_queue.Empty:
                if self._stop.is_set():
                    raise StopIteration from None
        waited = time.perf_counter() - t0
        if waited > STALL_S and self.batches_delivered > 0:  # the first batch is start-up, not a stall
            self.stalls.append((time.time(), waited))
        self.batches_delivered += 1
        return batch

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        while True:
            try:
                yield self.next_batch()
            except StopIteration:
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * GET_TIMEOUT_S)
