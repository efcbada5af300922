"""Preemption: on SIGTERM (the notice TPU VMs, Kubernetes and Slurm send
before they stop a job) the trainer finishes the steps on the device, writes
a checkpoint and exits with status 143 (128 + SIGTERM), so schedulers see a
terminated job and a restart resumes from that checkpoint."""

import signal
import threading

EXIT_STATUS = 128 + signal.SIGTERM


class PreemptionWatcher:
    """`with PreemptionWatcher() as watcher:` ... `watcher.requested`."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        # Signal handlers can only be set from the main thread.
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
