"""TensorFlow's start-up without its CUDA notices, in the job's processes that import it.

On a machine without an NVIDIA driver, TensorFlow's CUDA stub logs "Could not find cuda drivers on
your machine, GPU will not be used" twice while the library loads, each after an absl line saying
that logging is not set up yet: before TF_CPP_MIN_LOG_LEVEL (services/options.py) applies, so no
log level hides them. They only say that there is no GPU, which the trainer's device line says too.
`import_tensorflow` loads TensorFlow with this process's stderr (file descriptor 2, where the C++
library writes) passed through a filter that drops exactly those lines; everything else passes,
and an error of the import still raises. On a machine with a driver there is nothing to drop.
"""

from __future__ import annotations

import os
import sys
import threading

NOTICES = (b"cudart_stub.cc", b"All log messages before absl::InitializeLog() is called")


def import_tensorflow() -> None:
    """`import tensorflow` without the CUDA notices of its start-up (module docstring)."""
    if "tensorflow" in sys.modules:
        return
    read, write = os.pipe()
    stderr = os.dup(2)

    def copy() -> None:
        with os.fdopen(read, "rb") as lines:
            for line in lines:
                if not any(notice in line for notice in NOTICES):
                    os.write(stderr, line)

    sys.stderr.flush()
    copier = threading.Thread(target=copy, name="tensorflow-start-up-filter", daemon=True)
    copier.start()
    os.dup2(write, 2)
    os.close(write)
    try:
        import tensorflow  # noqa: F401
    finally:
        sys.stderr.flush()
        os.dup2(stderr, 2)  # the pipe's last writer closes: the copier reads to its end
        copier.join(timeout=5)
        os.close(stderr)
