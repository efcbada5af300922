"""Preemption: on SIGTERM (the notice TPU VMs, Kubernetes and Slurm send
before they stop a job) or a first Ctrl-C (SIGINT), the trainer finishes the
steps on the device, writes a checkpoint and exits with status 128 + the
signal (143 for SIGTERM, 130 for Ctrl-C), so schedulers see a terminated job
and a restart resumes from that checkpoint. A second Ctrl-C stops the process
at once, without a checkpoint."""

import os
import signal
import sys
import threading

SIGNALS = (signal.SIGTERM, signal.SIGINT)
EXIT_STATUS = 128 + signal.SIGTERM


class PreemptionWatcher:
    """`with PreemptionWatcher() as watcher:` ... `watcher.requested`, then
    `watcher.name` ("SIGTERM", "SIGINT") and `watcher.exit_status`.

    Python runs signal handlers only between bytecodes, so not while the main
    thread waits for the device: a second Ctrl-C then would wait for the
    steps in flight. Instead Python's C-level handler writes every signal
    number to a wakeup pipe (`signal.set_wakeup_fd`) the moment it arrives,
    and a thread reading that pipe acts on it at once. The Python-level
    handler marks the request too, so that code running right after a signal
    (a test signalling itself) already sees it."""

    def __init__(self):
        self.requested = False
        self.signal = None
        self._previous = {}
        self._pipe = self._thread = None
        self._interrupts = 0
        self._announced = False

    @property
    def name(self):
        return signal.Signals(self.signal).name if self.signal else None

    @property
    def exit_status(self):
        return 128 + self.signal if self.signal else None

    def __enter__(self):
        # Signal handlers can only be set from the main thread.
        if threading.current_thread() is not threading.main_thread():
            return self
        read, write = os.pipe()
        os.set_blocking(write, False)  # set_wakeup_fd needs a non-blocking one
        self._pipe = (read, write)
        self._previous_fd = signal.set_wakeup_fd(write)
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, lambda signum, _: self._request(signum))
        self._thread = threading.Thread(target=self._watch, name="preemption", daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while data := os.read(self._pipe[0], 64):
            for signum in data:
                if signum in SIGNALS:
                    self._note(signum)

    def _note(self, signum):
        """Each signal once, as it arrives (the watching thread, which also
        prints: a print inside a signal handler could re-enter one the main
        thread was in)."""
        if signum == signal.SIGINT:
            self._interrupts += 1
            if self._interrupts > 1:
                print("second Ctrl-C: stopping now, without a checkpoint", file=sys.stderr)
                sys.stderr.flush()
                os._exit(128 + signal.SIGINT)
        self._request(signum)
        if not self._announced:
            self._announced = True
            again = " (Ctrl-C again stops at once)" if self.signal == signal.SIGINT else ""
            print(
                f"{self.name}: finishing the steps in flight, then a checkpoint{again}", flush=True
            )

    def _request(self, signum):
        # No lock: this also runs as a signal handler, which must not block.
        if not self.requested:
            self.signal, self.requested = signum, True

    def __exit__(self, *exc_info):
        if self._pipe is None:
            return
        signal.set_wakeup_fd(self._previous_fd)
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        os.close(self._pipe[1])  # the thread reads the end of the pipe and returns
        self._thread.join(timeout=5)
        os.close(self._pipe[0])
