"""How many CPU threads to train with while other processes come and go on the same machine."""

import time
from collections import deque

import torch

# Windows span a few seconds so that periodic bursts (a browser redrawing the live view every second)
# average out instead of making one window look slow and the next one fast.
WINDOW_S = 2.0  # training speed is measured over windows of at least this long
PROBE_EVERY = 15  # windows between tries of the other thread count while nothing seems wrong (~30 s)
RECHECK_EVERY = 5  # windows before trying all threads again while running with fewer (~10 s) ...
RECHECK_MAX = 40  # ... doubled after each try that loses, up to this (~80 s)
SLOWDOWN = 0.7  # a window this much slower than the recent best at all threads: try fewer at once
BETTER = 1.15  # the other count must be this much faster to be kept: a busy core makes it 2-3x


class CpuThreads:
    """Keeps PyTorch's CPU thread count at whichever of two settings trains faster right now.

    With a thread on every core, one other busy process (a browser, the dashboard's server, a build)
    makes PyTorch's threads wait for each other at every parallel operation: on 2 cores, one busy
    process made an MLP epoch 2.7x slower with 2 threads, but barely slower with 1. So the training
    loop reports each batch here; every few seconds, or at once when speed drops, one window is
    trained with the other setting, and the faster one is kept. Call `close()` to restore the count.
    """

    def __init__(self, most: int | None = None, clock=time.perf_counter):
        self.original = torch.get_num_threads()
        self.most = most or self.original
        self.fewer = max(1, self.most // 2)
        self.current = self.most
        self._clock = clock
        self._recent_best: deque[float] = deque(maxlen=20)  # speeds of recent windows at `most` threads
        self._base_rate = 0.0  # the last window's speed at `current`, to compare a probe with
        self._probing = False
        self._windows = 0
        self._quiet_until = 0  # no probe on a slowdown before this window: one failed probe is enough
        self._recheck_at = 0  # the window at which to try all threads again while running with fewer
        self._recheck_every = RECHECK_EVERY
        self.switches = 0  # how often the count changed and stayed
        self.restart()

    @property
    def active(self) -> bool:
        return self.most > 1

    def restart(self) -> None:
        """Start a new window (after a pause in training, e.g. the test pass between epochs)."""
        self._start, self._samples = self._clock(), 0

    def batch_done(self, samples: int) -> None:
        if not self.active:
            return
        self._samples += samples
        elapsed = self._clock() - self._start
        if elapsed >= WINDOW_S:
            self._window_done(self._samples / elapsed)
            self.restart()

    def _window_done(self, rate: float) -> None:
        if self._probing:  # the window just measured ran with the other count
            self._probing = False
            if rate > self._base_rate * BETTER:
                self._base_rate = rate
                self.switches += 1
                self._recheck_every = RECHECK_EVERY
                self._recheck_at = self._windows + self._recheck_every
            else:
                self._set(self.fewer if self.current == self.most else self.most)
                if self.current == self.fewer:  # all threads are still slower: wait longer next time
                    self._recheck_every = min(2 * self._recheck_every, RECHECK_MAX)
                    self._recheck_at = self._windows + self._recheck_every
            return
        self._windows += 1
        self._base_rate = rate
        if self.current == self.most:
            self._recent_best.append(rate)
            slowed = rate < SLOWDOWN * max(self._recent_best) and self._windows >= self._quiet_until
            if slowed or self._windows % PROBE_EVERY == 0:
                self._probe(self.fewer)
        elif self._windows >= self._recheck_at:
            self._probe(self.most)

    def _probe(self, threads: int) -> None:
        self._probing = True
        self._quiet_until = self._windows + RECHECK_EVERY
        self._set(threads)

    def _set(self, threads: int) -> None:
        self.current = threads
        torch.set_num_threads(threads)

    def close(self) -> None:
        torch.set_num_threads(self.original)
