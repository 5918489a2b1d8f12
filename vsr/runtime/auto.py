"""``--runtime auto`` on the CPU: time TensorFlow and LiteRT once per machine and input size, keep the winner.

Which runtime is faster depends on the CPU: LiteRT/XNNPACK ran the folded + subpixel generator at
683 ms/frame against TensorFlow's 1197 on an AVX2 EPYC, TensorFlow at 578 against LiteRT's 850 on an
AVX-512 Xeon. So the first time a model meets a (CPU model, architecture, threads, input-size bucket),
:class:`AutoCall` runs each candidate on a synthetic input of the first call's shape (one untimed
warm-up call each, then round-robin timed calls within ``TIMING_BUDGET_S``, best of them), uses the
faster and writes the choice to the cache (:mod:`vsr.runtime.cache`) beside the converted model; later
runs read it and build only the runtime they use. Nothing here is timed on a GPU (see ``vsr.runtime``).
"""

import contextlib
import datetime
import logging
import math
import platform
import time
from dataclasses import asdict, dataclass

import numpy as np

log = logging.getLogger("vsr")

#: The runtimes ``auto`` chooses among on the CPU, in the order a tie goes.
CANDIDATES = ("litert", "tf")
#: Input-size buckets: the side of a square of the same area, up to which one timing holds.
BUCKET_SIDES = (64, 128, 256, 512, 1024)
#: Timing inputs larger than this many pixels are scaled down to it (same aspect): the full generator
#: takes ~27 us per input pixel in LiteRT here, so 192x192 is ~1 s a call.
TIMING_MAX_PIXELS = 192 * 192
#: Timed rounds (after one warm-up call each), and the seconds after which no further round starts.
TIMING_ROUNDS = 3
TIMING_BUDGET_S = 4.0


def size_bucket(height, width):
    """The bucket of (height, width) inputs: ``"<=256"`` (a square-equivalent side of at most 256
    pixels), ..., ``">1024"``."""
    side = math.sqrt(max(1, height * width))
    for bound in BUCKET_SIDES:
        if side <= bound:
            return f"<={bound}"
    return f">{BUCKET_SIDES[-1]}"


def timing_shape(height, width):
    """The (height, width) timed for inputs of this size: itself, or scaled to ``TIMING_MAX_PIXELS``."""
    pixels = height * width
    if pixels <= TIMING_MAX_PIXELS:
        return int(height), int(width)
    f = math.sqrt(TIMING_MAX_PIXELS / pixels)
    return max(8, int(height * f)), max(8, int(width * f))


def machine():
    """``{"cpu", "arch", "simd", "threads"}`` naming what a timing holds for."""
    from vsr.runtime.litert import cpu_threads

    name, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                field, _, value = line.partition(":")
                field = field.strip()
                if field in ("model name", "Model", "Hardware", "cpu model") and not name:
                    name = value.strip()
                elif field in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "asimd", "sve")
            if f in flags]
    return {"cpu": name or platform.processor() or "unknown", "arch": platform.machine(),
            "simd": simd, "threads": cpu_threads()}


def describe_machine(m=None):
    """``"AMD EPYC (x86_64, 2 threads, avx2 fma)"``."""
    m = m or machine()
    simd = f", {' '.join(m['simd'])}" if m["simd"] else ""
    return f"{m['cpu']} ({m['arch']}, {m['threads']} thread{'s' * (m['threads'] != 1)}{simd})"


def time_runtimes(calls, x, budget_s=TIMING_BUDGET_S, rounds=TIMING_ROUNDS):
    """``{name: ms per frame}`` of each ``call(x)``: one warm-up call each (traces, allocations),
    then round-robin timed rounds, the best of each; no round starts after ``budget_s`` seconds."""
    started = time.perf_counter()
    for call in calls.values():
        call(x)
    best = {name: math.inf for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            t = time.perf_counter()
            call(x)
            best[name] = min(best[name], time.perf_counter() - t)
        if time.perf_counter() - started > budget_s:
            break
    return {name: 1000 * seconds / x.shape[0] for name, seconds in best.items()}


@dataclass
class Choice:
    """What ``auto`` chose for one input-size bucket, and why."""

    runtime: str
    ms_per_frame: dict  # {runtime: ms per frame at timed_shape}
    timed_shape: tuple  # (height, width)
    bucket: str
    measured_at: str  # ISO date and time of the timing
    cached: bool = False  # read from the cache, not timed by this process

    def describe(self):
        """``"litert, 683 ms/frame (tf 1197) at 180x144, measured now"`` (width x height)."""
        others = ", ".join(f"{r} {ms:.0f}" for r, ms in self.ms_per_frame.items() if r != self.runtime)
        h, w = self.timed_shape
        when = f"cached from {self.measured_at}" if self.cached else "measured now"
        return (f"{self.runtime}, {self.ms_per_frame[self.runtime]:.0f} ms/frame"
                f"{f' ({others})' if others else ''} at {w}x{h}, {when}")


class AutoCall:
    """``call(x)`` running each input-size bucket on the runtime timed fastest for it here.

    Args:
        source: a :class:`vsr.runtime.ModelSource` (its ``key`` lets choices be cached).
        candidates: runtimes to choose among.
        threads: LiteRT's XNNPACK threads (default: one per available core).
    """

    def __init__(self, source, candidates=CANDIDATES, threads=None):
        self.source = source
        self.candidates = tuple(candidates)
        self.threads = threads
        self.choices = {}  # bucket -> Choice
        self._calls = {}
        self._machine = None
        if source.cached_flatbuffer() is None:
            # Nothing cached: build the model now, so a bad weights file fails before any work.
            source.keras()

    def call_for(self, runtime):
        """The compiled call of one candidate runtime (built on first use)."""
        if runtime not in self._calls:
            from vsr.runtime import compiled_call

            self._calls[runtime] = compiled_call(self.source, runtime, threads=self.threads)
        return self._calls[runtime]

    def choice_key(self, bucket):
        """The cache key of a choice, or None when the source names no weights."""
        model = self.source.flatbuffer_key()
        if model is None:
            return None
        if self._machine is None:
            self._machine = machine()
        from vsr.runtime import _version

        return {"model": model, "machine": self._machine, "bucket": bucket, "candidates": list(self.candidates),
                "litert": _version("ai-edge-litert")}

    def choose(self, height, width):
        """The :class:`Choice` for (height, width) inputs: remembered, cached, or timed now."""
        from vsr.runtime import cache
        from vsr.startup import phase

        bucket = size_bucket(height, width)
        if bucket in self.choices:
            return self.choices[bucket]
        key = self.choice_key(bucket)
        choice = self._cached(key)
        if choice is None:
            with cache.locked("runtime", key) if key else contextlib.nullcontext():
                choice = self._cached(key)  # another process may have timed it meanwhile
                if choice is None:
                    shape = timing_shape(height, width)
                    calls = {r: self.call_for(r) for r in self.candidates}
                    x = np.random.default_rng(0).random((1, *shape, 3), dtype=np.float32)
                    with phase(f"time the runtimes ({' vs '.join(calls)}, {shape[1]}x{shape[0]})"):
                        ms = time_runtimes(calls, x)
                    fastest = min(self.candidates, key=lambda r: (ms[r], self.candidates.index(r)))
                    choice = Choice(fastest, {r: round(float(ms[r]), 1) for r in self.candidates}, shape,
                                    bucket, datetime.datetime.now().isoformat(timespec="seconds"))
                    if key:
                        value = asdict(choice)
                        del value["cached"]
                        cache.write_json("runtime", key, value)
        log.info("runtime auto for inputs %s px a side: %s", bucket, choice.describe())
        self.choices[bucket] = choice
        return choice

    def _cached(self, key):
        from vsr.runtime import cache

        if key is None:
            return None
        value = cache.read_json("runtime", key)
        if value is None:
            return None
        try:
            choice = Choice(**{**value, "timed_shape": tuple(value["timed_shape"]), "cached": True})
            ok = choice.runtime in self.candidates and set(choice.ms_per_frame) == set(self.candidates)
        except (TypeError, KeyError, AttributeError):  # an entry of another layout
            return None
        return choice if ok else None

    def chosen(self):
        """The runtimes chosen so far, in the order first chosen."""
        return list(dict.fromkeys(c.runtime for c in self.choices.values()))

    def __call__(self, x):
        choice = self.choose(x.shape[1], x.shape[2])
        return self.call_for(choice.runtime)(x)
