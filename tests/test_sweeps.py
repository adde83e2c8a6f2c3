"""Training-stability sweeps (ardiff.sweeps): the runs, the held-out score, diverged runs kept, the shipped file."""
import json

import pytest
import torch

from ardiff import sweeps, zoo
from ardiff.train import TrainingDiverged


def test_runs_vary_only_seed_or_lr():
    base = zoo.recipe("cats-ddpm")
    rs = sweeps.runs("cats-ddpm", seeds=(0, 1), lr_factors=(0.5, 4.0), steps=240)
    assert [r.name for r in rs] == ["cats-ddpm-sweep-seed0", "cats-ddpm-sweep-seed1",
                                    "cats-ddpm-sweep-lr0.5x", "cats-ddpm-sweep-lr4x"]
    assert [r.train.seed for r in rs] == [0, 1, 0, 0]
    assert [r.train.lr for r in rs] == [base.train.lr, base.train.lr, base.train.lr * 0.5, base.train.lr * 4]
    for r in rs:
        assert r.train.steps == 240 and r.train.warmup_steps == base.train.warmup_steps == 200   # the recipe's warm-up
        assert (r.config, r.data, r.objective, r.schedule_spec) == (base.config, base.data, base.objective, base.schedule_spec)
    assert len({r.hash for r in rs}) == 4
    with pytest.raises(ValueError, match="steps must be an int >= 10"):
        sweeps.runs("cats-ddpm", steps=5)
    with pytest.raises(ValueError, match="steps must exceed the recipe's warm-up of 200"):
        sweeps.runs("cats-ddpm", steps=200)
    with pytest.raises(ValueError, match="lr_factors must be > 0"):
        sweeps.runs("cats-ddpm", lr_factors=(0,))


@pytest.fixture
def tiny_sweep(tmp_path, monkeypatch, shared_data):
    unet = {**zoo.recipe("cats-ddpm").config, "base_channels": 8, "channel_mults": [1, 2], "num_res_blocks": 1,
            "attention": False}
    tiny = zoo.recipe("cats-ddpm").variant("cats-ddpm", config=unet, data={**zoo.recipe("cats-ddpm").data, "limit": 64},
                                           train=dict(batch_size=8, warmup_steps=2))
    monkeypatch.setitem(zoo.RECIPES, "cats-ddpm", tiny)
    monkeypatch.setenv("ARDIFF_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_sweep_records_scores_and_divergence(tiny_sweep, monkeypatch):
    real_train = zoo.train_recipe

    def train_or_diverge(r, **kw):
        if r.name.endswith("lr16x"):
            raise TrainingDiverged("loss became nan between steps 1 and 10; the last good checkpoint is x")
        return real_train(r, **kw)

    monkeypatch.setattr(zoo, "train_recipe", train_or_diverge)
    entry = sweeps.run_sweep("cats-ddpm", progress=False, root=tiny_sweep, seeds=(0, 1), lr_factors=(16.0,), steps=10)
    assert [r["diverged"] for r in entry["runs"]] == [False, False, True]
    a, b, c = entry["runs"]
    assert a["heldout"] > 0 and b["heldout"] > 0 and a["heldout"] != b["heldout"] and c["heldout"] is None
    assert "nan" in c["message"] and entry["recipe_hash"] == zoo.recipe("cats-ddpm").hash
    assert entry["untrained"] > max(a["heldout"], b["heldout"])       # training helped, on held-out cats
    summary = sweeps.summarise(entry)
    assert summary["lr"] == {16.0: None} and summary["diverged"] == [c["run"]]
    assert abs(summary["seed_mean"] - (a["heldout"] + b["heldout"]) / 2) < 1e-12 and summary["seed_sd"] > 0
    shipped = json.loads((tiny_sweep / "sweeps.json").read_text())
    assert shipped["cats-ddpm"]["runs"][0]["run"] == a["run"] and shipped["cats-ddpm"]["complete"]
    assert "partial:cats-ddpm" not in shipped and entry["converged"] is None   # no shipped model of this recipe
    assert sweeps.load("cats-ddpm", root=tiny_sweep)["runs"][2]["diverged"]
    # the held-out score is the same for the same model: fixed draws of t and noise
    model, _ = zoo.train_recipe(sweeps.runs("cats-ddpm", seeds=(0,), lr_factors=(), steps=10)[0])
    r0 = sweeps.runs("cats-ddpm", seeds=(0,), lr_factors=(), steps=10)[0]
    assert sweeps.heldout(r0, model, n=20) == sweeps.heldout(r0, model, n=20)
    monkeypatch.setitem(zoo.RECIPES, "cats-ddpm", zoo.recipe("cats-ddpm").variant("cats-ddpm", train=dict(lr=1.0)))
    with pytest.raises(ValueError, match="re-run `python -m ardiff sweep cats-ddpm`"):
        sweeps.load("cats-ddpm", root=tiny_sweep)


def test_summarise_measures_progress_in_a_unit_free_way():
    def entry(scale):  # the same sweep in two units: scores scaled by `scale`
        runs = [{"run": f"x-sweep-seed{i}", "lr": 1e-3, "diverged": False, "heldout": scale * v} for i, v in enumerate((2.0, 2.2, 1.8))]
        runs += [{"run": "x-sweep-lr0.25x", "lr": 2.5e-4, "diverged": False, "heldout": scale * 5.0},
                 {"run": "x-sweep-lr16x", "lr": 1.6e-2, "diverged": True, "heldout": None}]
        return {"name": "x", "untrained": scale * 8.0, "runs": runs}
    a, b = sweeps.summarise(entry(1.0)), sweeps.summarise(entry(1000.0))
    assert a["lr"][0.25] == pytest.approx(0.5) and a["lr"][16.0] is None and a["diverged"] == ["x-sweep-lr16x"]
    assert a["seed_progress_sd"] == pytest.approx(b["seed_progress_sd"]) == pytest.approx(0.2 / 6.0)
    assert a["lr"][0.25] == pytest.approx(b["lr"][0.25])
    stuck = entry(1.0)
    stuck["untrained"] = 1.0                                      # the seeds did not beat the untrained model
    with pytest.raises(ValueError, match="no progress"):
        sweeps.summarise(stuck)


def test_spread_test_is_the_two_sided_f_test():
    """For 3 seeds each, F(2, 2) has P(F > f) = 1 / (1 + f): a ratio of sds of 2 either way is 40% likely."""
    def summary(sd, seeds=3):
        return {"seed_progress_sd": sd, "seeds": seeds}
    ratio, p = sweeps.spread_test(summary(0.2), summary(0.1))
    assert ratio == pytest.approx(2.0) and p == pytest.approx(2 / (1 + 4))
    assert sweeps.spread_test(summary(0.1), summary(0.2))[1] == pytest.approx(0.4)   # symmetric
    ratio, p = sweeps.spread_test(summary(0.131), summary(0.005))
    assert ratio == pytest.approx(26.2) and p == pytest.approx(2 / (1 + 26.2 ** 2)) and p < 0.01
    assert sweeps.spread_test(summary(0.1, seeds=10), summary(0.1, seeds=10))[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="spread > 0"):
        sweeps.spread_test(summary(0.0), summary(0.1))


def test_an_interrupted_sweep_resumes_at_its_next_run(tiny_sweep, monkeypatch):
    real_train, trained = zoo.train_recipe, []

    def interrupted(r, **kw):
        if r.name.endswith("seed1") and not trained.count(r.name):
            trained.append(r.name)
            raise KeyboardInterrupt
        trained.append(r.name)
        return real_train(r, **kw)

    monkeypatch.setattr(zoo, "train_recipe", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweeps.run_sweep("cats-ddpm", progress=False, root=tiny_sweep, seeds=(0, 1), lr_factors=(), steps=10)
    shipped = json.loads((tiny_sweep / "sweeps.json").read_text())
    assert list(shipped) == ["partial:cats-ddpm"] and [r["run"] for r in shipped["partial:cats-ddpm"]["runs"]] == \
        ["cats-ddpm-sweep-seed0"] and not shipped["partial:cats-ddpm"]["complete"]
    with pytest.raises(ValueError, match="no shipped sweep"):          # a partial sweep is not a result
        sweeps.load("cats-ddpm", root=tiny_sweep)
    entry = sweeps.run_sweep("cats-ddpm", progress=False, root=tiny_sweep, seeds=(0, 1), lr_factors=(), steps=10)
    assert trained == ["cats-ddpm-sweep-seed0", "cats-ddpm-sweep-seed1", "cats-ddpm-sweep-seed1"]  # seed0 not redone
    assert [r["run"] for r in entry["runs"]] == ["cats-ddpm-sweep-seed0", "cats-ddpm-sweep-seed1"]
    assert list(json.loads((tiny_sweep / "sweeps.json").read_text())) == ["cats-ddpm"]
    # other settings start afresh instead of mixing runs of two sweeps
    again = sweeps.run_sweep("cats-ddpm", progress=False, root=tiny_sweep, seeds=(0, 1), lr_factors=(2.0,), steps=10)
    assert [r["run"] for r in again["runs"]][-1] == "cats-ddpm-sweep-lr2x" and len(again["runs"]) == 3


def _entry(seed_scores, lr_scores, untrained=8.0, converged=4.0, scale=1.0):
    runs = [{"run": f"x-sweep-seed{i}", "lr": 1e-3, "diverged": False, "heldout": scale * v} for i, v in enumerate(seed_scores)]
    runs += [{"run": f"x-sweep-lr{f:g}x", "lr": 1e-3 * f, "diverged": v is None, "heldout": None if v is None else scale * v}
             for f, v in lr_scores.items()]
    return {"name": "x", "untrained": scale * untrained, "converged": scale * converged, "runs": runs}


def test_progress_runs_from_untrained_to_converged_in_any_unit():
    a = sweeps.summarise(_entry((5.0, 5.2, 4.8), {4.0: 6.0, 16.0: None}))
    b = sweeps.summarise(_entry((5.0, 5.2, 4.8), {4.0: 6.0, 16.0: None}, scale=0.01))
    assert a["progress"] == pytest.approx(0.75) and a["seed_progresses"] == pytest.approx([0.75, 0.7, 0.8])
    assert a["lr_progress"] == {4.0: pytest.approx(0.5), 16.0: None}
    assert a["seed_rel_sd"] == pytest.approx(0.2 / 1.0)        # the sd over the distance still to go (5.0 - 4.0)
    for k in ("progress", "seed_rel_sd", "seed_progress_sd"):
        assert a[k] == pytest.approx(b[k])
    with pytest.raises(ValueError, match="no better than the untrained"):
        sweeps.summarise(_entry((5.0, 5.2), {}, converged=9.0))


def test_the_stability_verdict_gates_then_tests_seed_spreads_and_describes_learning_rates():
    steady = sweeps.summarise(_entry((5.0, 5.01, 4.99, 5.005, 4.995), {4.0: 5.5, 16.0: 6.0}))
    shaky = sweeps.summarise(_entry((5.0, 5.3, 4.7, 5.2, 4.8), {4.0: None, 16.0: None}))
    ok = sweeps.summarise(_entry((5.0, 5.3, 4.7, 5.2, 4.8), {4.0: 5.5, 16.0: 6.0}))
    v = sweeps.verdict(shaky, steady)
    assert v["verdict"] == "supported" and v["diverged"] == {"ar": 2, "dm": 0} and v["failed"] == {"ar": [4.0, 16.0], "dm": []}
    assert v["ratio"] == pytest.approx(shaky["seed_rel_sd"] / steady["seed_rel_sd"]) and v["p"] < 0.01
    assert "PixelCNN 4x, 16x, DDPM none" in v["words"] and "described, not tested" in v["words"]
    assert sweeps.verdict(steady, shaky)["verdict"] == "contradicted"
    same = sweeps.verdict(ok, shaky)                       # the same spreads: failures alone decide nothing
    assert same["verdict"] == "not supported" and same["failed"] == {"ar": [], "dm": [4.0, 16.0]}
    # a run stuck near the untrained score fails as surely as one that diverged: less than half the seeds' progress
    stuck = sweeps.summarise(_entry((5.0, 5.01, 4.99, 5.005, 4.995), {4.0: 5.5, 16.0: 7.9}))   # 16x: 0.03 vs 0.75
    assert sweeps.verdict(ok, stuck)["failed"] == {"ar": [], "dm": [16.0]}
    assert sweeps.verdict(ok, sweeps.summarise(_entry((5.0, 5.01, 4.99, 5.005, 4.995), {4.0: 5.5, 16.0: 6.4})))["failed"]["dm"] == []
    # a diverged seed is counted and said, not dropped in silence
    lost = _entry((5.0, 5.3, 4.7, 5.2, 4.8), {4.0: 5.5})
    lost["runs"][1].update(diverged=True, heldout=None)
    s_lost = sweeps.summarise(lost)
    assert s_lost["seeds"] == 4 and s_lost["seeds_diverged"] == 1
    assert "diverged seed runs: the PixelCNN 1, the DDPM 0" in sweeps.verdict(s_lost, ok)["words"]
    # gates: too little progress, or no distance left to read a spread against
    slow = sweeps.summarise(_entry((6.0, 6.3, 5.7), {4.0: 6.5}))                     # only half way: not judged
    nj = sweeps.verdict(slow, steady)
    assert nj["verdict"] == "not judged" and "PixelCNN reaches 50%" in nj["words"] and nj["p"] is None
    there = sweeps.summarise(_entry((3.9, 4.0, 3.95), {4.0: 5.0}))                    # at or past converged
    assert "no distance left" in sweeps.verdict(there, steady)["words"]
    with pytest.raises(ValueError, match="alpha must be in"):
        sweeps.verdict(ok, ok, alpha=1.5)
    with pytest.raises(ValueError, match="fail_share must be in"):
        sweeps.verdict(ok, ok, fail_share=1.0)
    with pytest.raises(ValueError, match="converged score"):
        sweeps.verdict({k: v for k, v in ok.items() if k != "progress"}, ok)
