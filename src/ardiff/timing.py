r"""Seconds per image in a named regime, for speed claims that hold up.

How fast a sampler is depends on the batch: one image at a time pays every fixed cost (a Python loop, a kernel
launch, a network call) per image; a large batch shares it. So a speed claim names its regime:

- **latency**: batch 1, the wait for one image;
- **throughput**: the largest batch of a list whose peak memory fits a stated cap, images per second in bulk.

Each regime reports the median of ``repeats`` >= 5 timed calls, after ``warmup`` untimed ones, and their spread,
the interquartile range (25th to 75th percentile) of the repeats. :func:`compare_speed` times both sides of a
comparison the same way, their repeats interleaved (A B, B A, A B, ...) so that a drift of a shared machine hits both,
and writes a verdict that names each regime. (:func:`ardiff.metrics.timer` times a single call.)

**Memory** is the peak that one call ``fn(b)`` adds to what the process already holds, in GB (1e9 bytes), read
on untimed calls only:

- CUDA: ``torch.cuda.max_memory_allocated()`` after ``reset_peak_memory_stats()``, minus the memory allocated
  before the call (tensors only; the caching allocator may reserve somewhat more);
- CPU on Linux: the resident set. Writing ``5`` to ``/proc/self/clear_refs`` resets the kernel's high-water mark
  ``VmHWM`` to the current ``VmRSS``; the peak is ``VmHWM`` after the call minus ``VmRSS`` before it. Freed memory
  is first handed back (``gc.collect()`` and glibc's ``malloc_trim(0)``), or a call that reuses it reads as free;
- CPU elsewhere: a thread samples ``psutil``'s resident set every millisecond (a shorter peak can be missed).

The throughput search runs the listed batches from the smallest up and stops at the first one that is predicted
or measured to exceed the cap (or that runs out of CUDA memory). The prediction extends a line through the two
largest batches measured so far (a fixed part plus a per-image part; with one measurement, in proportion to it),
so a fixed overhead does not rule out batches that fit. A batch predicted over the cap is never run; one that is
run and measured over the cap stops the search and is not used.
"""
from __future__ import annotations

import ctypes
import gc
import inspect
import threading
import time
from dataclasses import dataclass
from numbers import Real

import numpy as np
import torch

__all__ = ["REGIMES", "Timing", "SpeedComparison", "seconds_per_image", "compare_speed", "speed_verdict",
           "slower_claim", "peak_memory_gb"]

REGIMES = ("latency", "throughput")
GB = 1e9


@dataclass(frozen=True)
class Timing:
    """Seconds per image of one generator in one regime."""
    regime: str                 # 'latency' (batch 1) or 'throughput' (the largest listed batch under the cap)
    batch: int                  # images per call
    seconds_per_image: float    # the median over the repeats
    iqr: tuple[float, float]    # the spread: 25th and 75th percentiles of the repeats, seconds per image
    repeats: tuple[float, ...]  # every timed call in order, seconds per image
    memory_gb: float | None     # peak memory one call at this batch adds (None: not readable on this device)
    note: str = ""              # how the batch was chosen

    @property
    def images_per_second(self) -> float:
        return 1.0 / self.seconds_per_image

    def scaled(self, factor: float, why: str) -> "Timing":
        """This timing of a part of the work, extended to the whole: the median, the spread and every repeat times
        ``factor``, and ``why`` (the assumption that makes the part stand for the whole) added to the note.

        E.g. a sampler whose every step costs the same, timed on k of its S steps: ``t.scaled(S / k, "...")``."""
        if isinstance(factor, bool) or not isinstance(factor, Real) or not 0 < factor < float("inf"):
            raise ValueError(f"factor must be a finite number > 0, got {factor!r}")
        if not isinstance(why, str) or not why:
            raise ValueError("why must say what makes the timed part stand for the whole (a non-empty string)")
        return Timing(self.regime, self.batch, self.seconds_per_image * factor,
                      (self.iqr[0] * factor, self.iqr[1] * factor), tuple(r * factor for r in self.repeats),
                      self.memory_gb, "; ".join(filter(None, (self.note, f"x{factor:g}: {why}"))))

    def __str__(self):
        lo, hi = self.iqr
        return (f"{self.regime} (batch {self.batch}): {_fmt(self.seconds_per_image)}/image "
                f"(IQR {_fmt(lo)}-{_fmt(hi)}, {len(self.repeats)} repeats)")


@dataclass(frozen=True)
class SpeedComparison:
    """Two generators timed in the same regimes; ``ratio[regime]`` > 1 means the first is slower."""
    names: tuple[str, str]
    a: dict[str, Timing]
    b: dict[str, Timing]
    ratio: dict[str, float]     # regime -> a's seconds per image / b's
    verdict: str                # one line that names every regime


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _device(device) -> torch.device:
    from .train import pick_device

    return pick_device(None if device is None else str(device))


def _sync(device: torch.device):
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if device.type == "mps":
        return torch.mps.synchronize
    return lambda: None


def _proc_status(key: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))


def _sampled_peak_bytes(call) -> int:
    """Peak resident-set increase during ``call()``, sampled by a thread every millisecond (needs psutil)."""
    import psutil

    proc, done = psutil.Process(), threading.Event()
    before = proc.memory_info().rss
    peak = [before]

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            done.wait(0.001)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        call()
    finally:
        done.set()
        thread.join()
    return max(peak[0], proc.memory_info().rss) - before


def peak_memory_gb(fn, batch: int, device=None) -> float:
    """Peak memory, in GB, that one call ``fn(batch)`` adds on ``device`` (how: see the module docstring).

    Args:
        fn: ``fn(b)`` generates ``b`` images (its result is dropped).
        batch: the ``b`` to call it with.
        device: where ``fn`` works: a CUDA device or the CPU (default: :func:`ardiff.train.pick_device`).
    Returns:
        The peak increase in GB (1e9 bytes).
    """
    device = _device(device)
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be a cpu or cuda device to read memory, got {device}")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn(batch)
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / GB
    gc.collect()                              # hand freed memory back, or a call that reuses it reads as free
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):         # not glibc
        pass
    try:
        before = _proc_status("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")                      # reset VmHWM (the peak resident set) to VmRSS
    except OSError:                           # not Linux, or not allowed
        return _sampled_peak_bytes(lambda: fn(batch)) / GB
    fn(batch)
    return (_proc_status("VmHWM") - before) / GB


def _check(fns, batch_sizes, memory_cap_gb, repeats, warmup, regimes, device, memory):
    if not all(callable(f) for f in fns):
        raise TypeError("the generators must be callables fn(b) that make b images")
    if (isinstance(batch_sizes, (str, bytes)) or not hasattr(batch_sizes, "__len__") or len(batch_sizes) == 0
            or any(isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1 for b in batch_sizes)):
        raise ValueError(f"batch_sizes must be a non-empty sequence of ints >= 1, got {batch_sizes!r}")
    if isinstance(memory_cap_gb, bool) or not isinstance(memory_cap_gb, Real) or not 0 < memory_cap_gb < np.inf:
        raise ValueError(f"memory_cap_gb must be a finite number > 0, got {memory_cap_gb!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 5:
        raise ValueError(f"repeats must be an int >= 5 (a median and a spread need them), got {repeats!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 1:
        raise ValueError(f"warmup must be an int >= 1, got {warmup!r}")
    if (isinstance(regimes, str) or len(regimes) == 0 or len(set(regimes)) != len(regimes)
            or not set(regimes) <= set(REGIMES)):
        raise ValueError(f"regimes must be a non-empty tuple of distinct names from {REGIMES}, got {regimes!r}")
    if "throughput" in regimes and memory is None and device.type not in ("cpu", "cuda"):
        raise ValueError(f"the throughput regime needs memory readings, which device {device} lacks: pass "
                         f"memory=fn(gen, batch, device) -> GB, or regimes=('latency',)")


def _predict(measured: dict, b: int):
    """Peak GB at batch ``b`` from the batches measured so far: a line through the two largest (a fixed part plus a
    per-image part, never below the largest measurement), or in proportion to the one there is."""
    ref = sorted(measured)[-2:]
    if len(ref) == 1:
        return measured[ref[0]] * b / ref[0], f"in proportion to batch {ref[0]}"
    (b0, m0), (b1, m1) = [(k, measured[k]) for k in ref]
    slope = max((m1 - m0) / (b1 - b0), 0.0)
    return max(m1 + slope * (b - b1), m1), f"a line through batches {b0} and {b1}"


def _choose_batch(fn, regime, batch_sizes, cap, warmup, read):
    """The regime's batch and its peak memory, calling ``fn`` for warm-up and memory probes.

    Returns (batch, memory_gb, note, calls made at that batch)."""
    if regime == "latency":
        for _ in range(warmup - 1):
            fn(1)
        return 1, read(fn, 1), "batch 1", warmup
    sizes = sorted(set(int(b) for b in batch_sizes))
    for _ in range(warmup - 1):                     # warm the process up before the first reading
        fn(sizes[0])
    measured, stop = {}, ""
    for b in sizes:
        if measured:
            predicted, how = _predict(measured, b)
            if predicted > cap:
                stop = f"; batch {b} predicted {predicted:.3g} GB ({how}), not run"
                break
        try:
            gb = read(fn, b)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            stop = f"; batch {b} ran out of memory"
            break
        if gb > cap:
            stop = f"; batch {b} measured {gb:.3g} GB"
            break
        measured[b] = gb
    if not measured:
        raise ValueError(f"memory_cap_gb = {cap:g} is below what the smallest batch, {sizes[0]}, needs{stop}")
    best = max(measured)
    return best, measured[best], f"largest of {sizes} under {cap:g} GB{stop}", warmup if best == sizes[0] else 1


def _measure(fns, batch_sizes, memory_cap_gb, repeats, warmup, device, regimes, clock, memory, progress):
    """Time every generator in ``fns`` in every regime, their repeats interleaved. Returns one dict per fn."""
    device = _device(device)
    _check(fns, batch_sizes, memory_cap_gb, repeats, warmup, regimes, device, memory)
    readable = memory is not None or device.type in ("cpu", "cuda")

    def read(fn, b):                                # one call fn(b); its peak memory in GB, or None
        if readable:
            return (memory or peak_memory_gb)(fn, b, device)
        fn(b)                                       # latency only (checked): no memory reading here
        return None

    sync = _sync(device)
    from tqdm.auto import tqdm

    results = [{} for _ in fns]
    for regime in regimes:
        plans = [_choose_batch(fn, regime, batch_sizes, memory_cap_gb, warmup, read) for fn in fns]
        for fn, (b, _, _, calls) in zip(fns, plans):
            for _ in range(warmup - calls):         # the rest of the warm-up at the chosen batch
                fn(b)
        times = [[] for _ in fns]
        sides = list(zip(fns, plans, times))
        for k in tqdm(range(repeats), desc=regime, disable=not progress, leave=False):
            for fn, (b, *_), ts in (sides if k % 2 == 0 else sides[::-1]):   # A B, B A, ...: drift hits both
                sync()
                start = clock()
                fn(b)
                sync()
                ts.append((clock() - start) / b)
        for res, (b, gb, note, _), ts in zip(results, plans, times):
            q25, q50, q75 = np.percentile(ts, [25, 50, 75])
            res[regime] = Timing(regime, b, float(q50), (float(q25), float(q75)), tuple(ts), gb, note)
    return results


def seconds_per_image(fn, batch_sizes=(1, 8, 32, 128, 512), memory_cap_gb: float = 4.0, repeats: int = 5,
                      warmup: int = 1, device=None, regimes=REGIMES, clock=time.perf_counter, memory=None,
                      progress: bool = False) -> dict[str, Timing]:
    """Seconds per image of ``fn`` in each regime: the median of ``repeats`` timed calls after ``warmup`` ones.

    >>> t = seconds_per_image(lambda b: sample(model, schedule, (b, 1, 28, 28), steps=10), device=device)
    >>> print(t["latency"], t["throughput"], sep="\\n")

    Args:
        fn: ``fn(b)`` generates ``b`` images; each call is timed whole (CUDA synchronised around it).
        batch_sizes: the throughput candidates; the largest whose peak memory fits ``memory_cap_gb`` is used.
        memory_cap_gb: the cap, in GB (1e9 bytes) of peak memory one call adds (see the module docstring).
        repeats: timed calls per regime, >= 5.
        warmup: untimed calls before them, >= 1 (memory is read on the last one).
        device: where ``fn`` works (default: :func:`ardiff.train.pick_device`).
        regimes: any of ``('latency', 'throughput')``.
        clock: the timer, seconds as a float (a test may inject one).
        memory: ``memory(fn, b, device) -> GB``, one call ``fn(b)`` and its peak (default :func:`peak_memory_gb`).
        progress: show a progress bar over the repeats.
    Returns:
        ``{regime: Timing}``; ``Timing.iqr`` is the spread, ``Timing.repeats`` the raw seconds per image.
    """
    return _measure([fn], batch_sizes, memory_cap_gb, repeats, warmup, device, regimes, clock, memory, progress)[0]


def speed_verdict(a: dict[str, Timing], b: dict[str, Timing], names=("A", "B")) -> str:
    """One line per comparison that names each regime, e.g. ``latency (batch 1): A is 3.1x slower than B;
    throughput (batch 512): A is 2.2x faster than B — the regimes disagree``. Two sides whose interquartile
    ranges overlap are called level."""
    parts, signs = [], set()
    for regime in a:
        ta, tb = a[regime], b[regime]
        r = ta.seconds_per_image / tb.seconds_per_image
        batch = f"batch {ta.batch}" if ta.batch == tb.batch else f"batch {ta.batch} vs {tb.batch}"
        if ta.iqr[0] <= tb.iqr[1] and tb.iqr[0] <= ta.iqr[1]:
            said, sign = f"{names[0]} and {names[1]} are level ({r:.3g}x, the spreads overlap)", 0
        elif r > 1:
            said, sign = f"{names[0]} is {r:.3g}x slower than {names[1]}", 1
        else:
            said, sign = f"{names[0]} is {1 / r:.3g}x faster than {names[1]}", -1
        parts.append(f"{regime} ({batch}): {said}")
        signs.add(sign)
    tail = (" — the regimes disagree" if {1, -1} <= signs else
            " — the regimes agree" if len(a) > 1 and len(signs) == 1 and 0 not in signs else "")
    return "; ".join(parts) + tail


def slower_claim(a: dict[str, Timing], b: dict[str, Timing], names=("A", "B")) -> tuple[str, str]:
    """The claim "A is slower than B", judged in every regime both were timed in (:func:`speed_verdict`'s rule:
    overlapping interquartile ranges are level).

    Returns:
        ``(word, sentence)``: word "supported" (A slower in every regime), "contradicted" (A faster in every
        regime), "mixed" (the regimes differ: one slower and one faster or level) or "not supported" (level in
        every regime); the sentence is :func:`speed_verdict`'s, which names each regime and its batch.
    """
    regimes = [r for r in a if r in b]
    if not regimes:
        raise ValueError(f"a and b must share a regime; a has {sorted(a)}, b has {sorted(b)}")
    signs = set()
    for r in regimes:
        ta, tb = a[r], b[r]
        level = ta.iqr[0] <= tb.iqr[1] and tb.iqr[0] <= ta.iqr[1]
        signs.add(0 if level else 1 if ta.seconds_per_image > tb.seconds_per_image else -1)
    word = ("supported" if signs == {1} else "contradicted" if signs == {-1} else
            "not supported" if signs == {0} else "mixed")
    return word, speed_verdict({r: a[r] for r in regimes}, {r: b[r] for r in regimes}, names)


def compare_speed(a, b, names=("A", "B"), **kwargs) -> SpeedComparison:
    """Time ``a`` and ``b`` in the same regimes (keywords as :func:`seconds_per_image`), repeats interleaved.

    Each side's throughput batch is its own largest batch under the cap; the verdict names both if they differ.

    Args:
        a, b: ``fn(k)`` generates ``k`` images.
        names: what the verdict calls them.
    Returns:
        A :class:`SpeedComparison`: both timings per regime, the ratio a / b per regime and the verdict.
    """
    if len(names) != 2 or not all(isinstance(n, str) and n for n in names) or names[0] == names[1]:
        raise ValueError(f"names must be two different non-empty strings, got {names!r}")
    kw = {k: p.default for k, p in inspect.signature(seconds_per_image).parameters.items() if k != "fn"}
    unknown = set(kwargs) - set(kw)
    if unknown:
        raise TypeError(f"compare_speed got unknown keywords {sorted(unknown)}; allowed: {sorted(kw)}")
    kw.update(kwargs)
    ta, tb = _measure([a, b], **kw)
    ratio = {r: ta[r].seconds_per_image / tb[r].seconds_per_image for r in ta}
    return SpeedComparison(tuple(names), ta, tb, ratio, speed_verdict(ta, tb, names))
