import hashlib
import pickle
import re

import pytest
import torch

from ardiff import NoiseSchedule, ddpm
from ardiff.checkpoints import ChecksumError, atomic_path, file_sha256, save_checkpoint
from ardiff.train import TrainConfig, TrainingDiverged, load_checkpoint, train
from ardiff.unet import UNet

S = NoiseSchedule.linear(100)
DATA = torch.randn(64, 1, 8, 8).clamp(-1, 1)


def tiny():
    torch.manual_seed(0)
    return UNet(image_size=8, base_channels=8, channel_mults=(1, 2), num_res_blocks=1, attention=False, groups=4)


def diffusion_loss(model, batch, g):
    return ddpm.loss(model, batch[0], S, generator=g)


KW = dict(batch_size=8, lr=1e-3, log_every=2, progress=False, device="cpu")


def test_loss_falls_and_history_is_recorded():
    r = train(tiny(), DATA, diffusion_loss, steps=30, **KW)
    assert [h[0] for h in r.history] == list(range(2, 31, 2))
    assert r.history[-1][1] < r.history[0][1]
    assert r.ema is not None and r.images_per_second > 0


def test_resume_equals_uninterrupted(tmp_path):
    full = train(tiny(), DATA, diffusion_loss, steps=12, **KW)

    calls = {"n": 0}

    def interrupted(model, batch, g):
        calls["n"] += 1
        if calls["n"] == 9:  # after the checkpoint at step 6, before the end
            raise KeyboardInterrupt
        return diffusion_loss(model, batch, g)

    path = tmp_path / "ck.pt"
    with pytest.raises(KeyboardInterrupt):
        train(tiny(), DATA, interrupted, steps=12, checkpoint_path=path, checkpoint_every=6, **KW)
    state = load_checkpoint(path)
    assert state["step"] == 6 and not state["complete"]
    resumed = train(tiny(), DATA, diffusion_loss, steps=12, checkpoint_path=path, resume=True, **KW)
    assert resumed.history == full.history
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(full.ema.parameters(), resumed.ema.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert load_checkpoint(path)["complete"]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    def nan_after_5(model, batch, g):
        loss = diffusion_loss(model, batch, g)
        nan_after_5.n += 1
        return loss * float("nan") if nan_after_5.n > 5 else loss
    nan_after_5.n = 0
    path = tmp_path / "ck.pt"
    with pytest.raises(TrainingDiverged, match="loss became nan between steps 5 and 6.*last good checkpoint"):
        train(tiny(), DATA, nan_after_5, steps=20, checkpoint_path=path, checkpoint_every=4, **{**KW, "log_every": 3})
    state = load_checkpoint(path)
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert not list(tmp_path.glob("*.tmp"))


def test_checkpoints_load_with_weights_only(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    train(tiny(), DATA, diffusion_loss, steps=2, checkpoint_path=path, **KW)
    calls = []
    real = torch.load

    def spy(*a, **k):
        calls.append(k.get("weights_only"))
        return real(*a, **k)

    monkeypatch.setattr(torch, "load", spy)
    load_checkpoint(path)
    assert calls == [True]
    # a checkpoint that smuggles in an arbitrary object is refused
    torch.save({"model": {}, "evil": TrainConfig()}, tmp_path / "evil.pt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_checkpoint(tmp_path / "evil.pt")


def test_bad_config():
    with pytest.raises(ValueError, match="steps must be >= 1"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\)"):
        TrainConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match="data tensors must share their first dimension"):
        train(tiny(), (DATA, torch.zeros(3)), diffusion_loss, steps=1, **KW)
    with pytest.raises(ValueError, match="data tensors must be on one device"):
        train(tiny(), (DATA, torch.zeros(64, device="meta")), diffusion_loss, steps=1, **KW)


def test_atomic_path_replaces_the_file_only_when_the_write_completes(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old" and not list(tmp_path.glob("*.tmp"))  # old file kept, no debris
    new = tmp_path / "sub" / "results.json"
    with atomic_path(new) as tmp:
        tmp.write_text("new")
        assert tmp.parent == new.parent and not new.exists()  # invisible until the block ends
    assert new.read_text() == "new" and not list(new.parent.glob("*.tmp"))


def test_load_checkpoint_checks_the_sha256_before_parsing(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    save_checkpoint({"w": torch.arange(3)}, path)
    digest = file_sha256(path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert torch.equal(load_checkpoint(path, sha256=digest)["w"], torch.arange(3))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("parsed before the checksum was checked"))
    expected = f"{path}: SHA-256 {digest} does not match the expected {'0' * 64}"
    with pytest.raises(ChecksumError, match=re.escape(expected)):
        load_checkpoint(path, sha256="0" * 64)


def test_callback_can_stop_training(tmp_path):
    seen = []

    def cb(step, model, ema):
        seen.append(step)
        return step >= 6

    path = tmp_path / "ck.pt"
    r = train(tiny(), DATA, diffusion_loss, steps=100, checkpoint_path=path, callback=cb, **KW)
    assert seen == [2, 4, 6] and r.history[-1][0] == 6
    assert load_checkpoint(path)["step"] == 6 and not load_checkpoint(path)["complete"]  # resumable, not finished


def test_device_name_words(monkeypatch):
    from ardiff.train import device_name

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "NVIDIA H100")
    assert device_name(torch.device("cuda")) == "cuda (NVIDIA H100)"
    assert device_name(torch.device("cpu")).startswith("cpu (") and "cores" in device_name(torch.device("cpu"))
    assert device_name(torch.device("mps")) == "mps"


def test_autocast_dtype_is_bf16_only_on_gpus_that_run_it_natively(monkeypatch):
    from ardiff.train import autocast_dtype

    assert autocast_dtype(torch.device("cpu")) is None            # fp32 is fastest on this CPU
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))   # T4: emulated bf16
    assert autocast_dtype(torch.device("cuda")) is None
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))   # A100
    assert autocast_dtype(torch.device("cuda")) is torch.bfloat16
