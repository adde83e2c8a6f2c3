"""Timing in named regimes: call counts, the batch under a memory cap, median and spread, verdicts, errors.

Fake generators count their calls, a fake clock supplies the durations and a fake memory reader the peaks, so
every check is deterministic; no test asserts a speed."""
import time
from collections import Counter

import pytest
import torch

from ardiff.timing import Timing, _sampled_peak_bytes, compare_speed, peak_memory_gb, seconds_per_image, slower_claim, speed_verdict


def counting():
    calls = Counter()
    return calls, (lambda b: calls.update([b]))


def linear_memory(gb_per_image):
    def memory(fn, b, device):
        fn(b)
        return gb_per_image * b
    return memory


def clock_of(durations):
    """A clock whose successive (start, stop) readings are ``durations`` apart."""
    readings, now = [], 0.0
    for d in durations:
        readings += [now, now + d]
        now += d + 1.0
    it = iter(readings)
    return lambda: next(it)


def test_calls_per_batch_and_the_batch_under_the_cap():
    calls, fn = counting()
    t = seconds_per_image(fn, batch_sizes=(16, 1, 2, 4, 8), memory_cap_gb=5, repeats=5, warmup=2, device="cpu",
                          memory=linear_memory(0.5), clock=clock_of([1.0] * 10))
    assert [t[r].regime for r in t] == ["latency", "throughput"]
    assert t["latency"].batch == 1 and t["throughput"].batch == 8 and t["throughput"].memory_gb == 4.0
    # batch 16 is predicted at 8 GB > 5 from batch 8's 4 GB, so it is never called
    assert calls[16] == 0 and "batch 16 predicted 8 GB (a line through batches 4 and 8)" in t["throughput"].note
    assert calls[8] == 2 + 5                          # warm-up (the first call is its memory probe) + repeats
    assert calls[2] == calls[4] == 1                  # one memory probe each
    assert calls[1] == (2 + 5) + 2                    # latency; then the throughput search's warm-up and probe
    assert len(t["latency"].repeats) == len(t["throughput"].repeats) == 5


def test_a_batch_measured_over_the_cap_is_not_chosen_and_the_next_is_not_run():
    calls, fn = counting()

    def quadratic(fn, b, device):                     # 0.1, 0.4, 1.6, 6.4 GB: batch 8 is predicted 3.2 but uses 6.4
        fn(b)
        return 0.1 * b * b

    t = seconds_per_image(fn, batch_sizes=(1, 2, 4, 8, 16), memory_cap_gb=5, regimes=("throughput",),
                          memory=quadratic, device="cpu", clock=clock_of([1.0] * 5))
    assert t["throughput"].batch == 4 and calls[8] == 1 and calls[16] == 0
    assert "batch 8 measured 6.4 GB" in t["throughput"].note


def test_running_out_of_cuda_memory_counts_as_over_the_cap():
    calls, fn = counting()

    def memory(fn, b, device):
        if b > 2:
            raise torch.cuda.OutOfMemoryError("fake")
        fn(b)
        return 0.001

    t = seconds_per_image(fn, batch_sizes=(1, 2, 4, 8), regimes=("throughput",), memory=memory, device="cpu",
                          clock=clock_of([1.0] * 5))
    assert t["throughput"].batch == 2 and "batch 4 ran out of memory" in t["throughput"].note and calls[8] == 0


def test_a_cap_below_the_smallest_batch_is_an_error():
    _, fn = counting()
    with pytest.raises(ValueError, match="memory_cap_gb"):
        seconds_per_image(fn, batch_sizes=(4, 8), memory_cap_gb=1, regimes=("throughput",), device="cpu",
                          memory=linear_memory(1.0), clock=clock_of([1.0] * 5))


def test_median_and_interquartile_range_of_injected_times():
    _, fn = counting()
    t = seconds_per_image(fn, regimes=("latency",), device="cpu", memory=linear_memory(0.0),
                          clock=clock_of([5.0, 1.0, 3.0, 2.0, 4.0]))["latency"]
    assert t.repeats == (5.0, 1.0, 3.0, 2.0, 4.0)
    assert t.seconds_per_image == 3.0 and t.iqr == (2.0, 4.0) and t.images_per_second == pytest.approx(1 / 3)
    assert str(t) == "latency (batch 1): 3 s/image (IQR 2 s-4 s, 5 repeats)"
    t = seconds_per_image(fn, batch_sizes=(8,), regimes=("throughput",), device="cpu", memory=linear_memory(0.0),
                          clock=clock_of([8.0, 16.0, 24.0, 32.0, 40.0, 48.0, 56.0]), repeats=7)["throughput"]
    assert t.batch == 8 and t.repeats == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)
    assert t.seconds_per_image == 4.0 and t.iqr == (2.5, 5.5)


def test_compare_interleaves_the_sides_and_names_the_regimes():
    log = []
    a, b = (lambda k: log.append(("A", k))), (lambda k: log.append(("B", k)))
    # latency: A 3 s, B 1 s per call; throughput at batch 4: A 4 s (1 s/image), B 8 s (2 s/image); in the order
    # A B, B A, A B, ...
    durations = [3.0, 1.0, 1.0, 3.0] * 2 + [3.0, 1.0] + [4.0, 8.0, 8.0, 4.0] * 2 + [4.0, 8.0]
    c = compare_speed(a, b, names=("PixelCNN", "DDIM-10"), batch_sizes=(1, 4), memory=linear_memory(0.1),
                      device="cpu", clock=clock_of(durations))
    assert c.ratio == {"latency": 3.0, "throughput": 0.5}
    assert c.a["throughput"].batch == c.b["throughput"].batch == 4
    assert c.verdict == ("latency (batch 1): PixelCNN is 3x slower than DDIM-10; throughput (batch 4): "
                         "PixelCNN is 2x faster than DDIM-10 — the regimes disagree")
    assert [name for name, _ in log[-10:]] == ["A", "B", "B", "A"] * 2 + ["A", "B"]   # the timed repeats alternate


def test_verdict_level_agreeing_and_different_batches():
    calls, fn = counting()
    one = seconds_per_image(fn, batch_sizes=(8,), device="cpu", memory=linear_memory(0.1),
                            clock=clock_of([1.0, 1.1, 0.9, 1.0, 1.2] + [8.0] * 5))
    two = seconds_per_image(fn, batch_sizes=(4,), device="cpu", memory=linear_memory(0.1),
                            clock=clock_of([2.0] * 5 + [8.0] * 5))
    said = speed_verdict(one, two)
    assert said == "latency (batch 1): A is 2x faster than B; throughput (batch 8 vs 4): A is 2x faster than B" \
                   " — the regimes agree"
    level = speed_verdict(one, one, names=("x", "y"))
    assert "latency (batch 1): x and y are level (1x, the spreads overlap)" in level and "disagree" not in level


@pytest.mark.parametrize("bad, match", [
    (dict(repeats=4), "repeats"), (dict(repeats=5.0), "repeats"), (dict(warmup=0), "warmup"),
    (dict(batch_sizes=()), "batch_sizes"), (dict(batch_sizes=(1, 0)), "batch_sizes"),
    (dict(batch_sizes=(True,)), "batch_sizes"), (dict(batch_sizes="8"), "batch_sizes"),
    (dict(memory_cap_gb=0), "memory_cap_gb"), (dict(memory_cap_gb=-1.0), "memory_cap_gb"),
    (dict(memory_cap_gb=float("inf")), "memory_cap_gb"), (dict(regimes=("speed",)), "regimes"),
    (dict(regimes=()), "regimes"), (dict(regimes="latency"), "regimes"),
    (dict(device="meta"), "throughput regime needs memory"),
])
def test_argument_errors_before_any_call(bad, match):
    calls, fn = counting()
    with pytest.raises(ValueError, match=match):
        seconds_per_image(fn, **{"device": "cpu", **bad})
    with pytest.raises(ValueError, match=match):
        compare_speed(fn, fn, **{"device": "cpu", **bad})
    assert not calls


def test_compare_rejects_bad_names_and_keywords():
    calls, fn = counting()
    with pytest.raises(ValueError, match="names"):
        compare_speed(fn, fn, names=("A", "A"))
    with pytest.raises(TypeError, match="steps"):
        compare_speed(fn, fn, steps=10)
    assert not calls


def test_latency_without_a_memory_reading():
    calls, fn = counting()
    t = seconds_per_image(fn, device="meta", regimes=("latency",), clock=clock_of([1.0] * 5))["latency"]
    assert t.memory_gb is None and calls[1] == 1 + 5


def test_peak_memory_of_a_real_allocation():
    hold = lambda b: torch.ones(b, 25_000_000)                       # noqa: E731  100 MB per unit of b
    assert 0.09 < peak_memory_gb(hold, 1, "cpu") < 0.3
    assert 0.19 < peak_memory_gb(hold, 2, "cpu") < 0.5

    def hold_a_while():
        x = torch.ones(25_000_000)
        time.sleep(0.05)                                             # long enough for the 1 ms sampler
        return x

    assert 0.09e9 < _sampled_peak_bytes(hold_a_while) < 0.3e9


def test_a_real_model_end_to_end():
    net = torch.nn.Conv2d(1, 4, 3, padding=1)
    with torch.no_grad():
        t = seconds_per_image(lambda b: net(torch.zeros(b, 1, 28, 28)), batch_sizes=(1, 4, 16), memory_cap_gb=1.0,
                              device="cpu")
    assert t["latency"].batch == 1 and t["throughput"].batch == 16
    for timing in t.values():
        assert len(timing.repeats) == 5 and min(timing.repeats) > 0
        assert timing.iqr[0] <= timing.seconds_per_image <= timing.iqr[1] and timing.memory_gb >= 0


def test_a_fixed_memory_overhead_does_not_rule_out_batches_that_fit():
    """0.5 GB fixed + 0.01 GB per image: in proportion to batch 1 (0.51 GB), batch 8 would be predicted at 4.1 GB;
    the line through two measured batches predicts 0.58 GB, so every listed batch under the cap is tried."""
    calls, fn = counting()

    def overhead(fn, b, device):
        fn(b)
        return 0.5 + 0.01 * b

    t = seconds_per_image(fn, batch_sizes=(1, 2, 8, 64, 512), memory_cap_gb=2, regimes=("throughput",),
                          memory=overhead, device="cpu", clock=clock_of([1.0] * 5))
    assert t["throughput"].batch == 64 and calls[512] == 0        # 512 is predicted at 5.6 GB: not run


def _t(regime, median, lo, hi, batch=1):
    return Timing(regime, batch, median, (lo, hi), (lo, median, hi, median, median), None)


def test_a_part_of_the_work_scaled_to_the_whole():
    part = _t("throughput", 0.01, 0.009, 0.012, batch=256)
    whole = part.scaled(200, "every step costs the same; 5 of 1,000 steps timed")
    assert whole.seconds_per_image == pytest.approx(2.0) and whole.iqr == pytest.approx((1.8, 2.4))
    assert whole.repeats == pytest.approx(tuple(200 * r for r in part.repeats)) and whole.batch == 256
    assert "x200: every step costs the same" in whole.note and whole.regime == "throughput"
    for bad in (0, -1.0, float("inf"), True, "2"):
        with pytest.raises(ValueError, match="factor must be"):
            part.scaled(bad, "why")
    with pytest.raises(ValueError, match="why must say"):
        part.scaled(2.0, "")


def test_the_slower_claim_in_every_regime():
    slow = {"latency": _t("latency", 3.0, 2.9, 3.1), "throughput": _t("throughput", 1.0, 0.9, 1.1, 256)}
    fast = {"latency": _t("latency", 1.0, 0.9, 1.1), "throughput": _t("throughput", 0.5, 0.45, 0.55, 256)}
    odd = {"latency": _t("latency", 1.0, 0.9, 1.1), "throughput": _t("throughput", 2.0, 1.9, 2.1, 256)}
    word, said = slower_claim(slow, fast, names=("PixelCNN", "DPM-Solver++ 10"))
    assert word == "supported" and said.startswith("latency (batch 1): PixelCNN is 3x slower than DPM-Solver++ 10")
    assert slower_claim(fast, slow)[0] == "contradicted"
    assert slower_claim(slow, slow)[0] == "not supported"
    word, said = slower_claim(slow, odd)
    assert word == "mixed" and "the regimes disagree" in said
    level_one = {"latency": slow["latency"], "throughput": fast["throughput"]}
    assert slower_claim(level_one, fast)[0] == "mixed"              # slower at batch 1, level in bulk
    assert slower_claim({"latency": slow["latency"]}, slow)[0] == "not supported"   # only the shared regimes count
    with pytest.raises(ValueError, match="must share a regime"):
        slower_claim({"latency": slow["latency"]}, {"throughput": slow["throughput"]})
