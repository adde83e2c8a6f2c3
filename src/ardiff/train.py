"""One training loop for every model in the book.

``train(model, data, loss_fn, config)`` minimises ``loss_fn(model, batch, generator)`` over random
mini-batches of ``data`` (a tensor, or a tuple of tensors sharing their first dimension) and returns
the loss history and an EMA copy of the weights. It

- picks the device (CUDA, then MPS, then CPU), keeps the data on the GPU when it fits, uses bf16
  autocast on GPUs with native bf16 (compute capability 8.0 and up: A100, L4, H100; fp32 on older ones such
  as Colab's T4, where bf16 is emulated and slower), ``channels_last`` and fused AdamW on CUDA, and
  ``torch.compile`` when asked;
- keeps EMA weights with warm-up, :math:`d_k = \\min(d_{max}, (1+k)/(10+k))`, updated with
  ``torch._foreach_lerp_``;
- shows a tqdm bar with the loss;
- writes checkpoints atomically (:func:`ardiff.checkpoints.save_checkpoint`: temp file, then rename)
  every ``checkpoint_every`` steps and at the end; ``resume=True`` continues from one to the same
  result as an uninterrupted run (the random state is saved with the weights);
- stops on a NaN or inf loss with :class:`TrainingDiverged`, leaving the last good checkpoint alone.
"""
from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from .checkpoints import load_checkpoint, save_checkpoint  # re-exported: the loop's checkpoint files

__all__ = ["TrainConfig", "TrainResult", "TrainingDiverged", "train", "lr_factor", "pick_device", "device_name", "save_checkpoint", "load_checkpoint", "autocast_dtype", "autocast"]


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 128
    lr: float = 2e-4
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0      # max global grad norm (None: no clipping)
    warmup_steps: int = 100            # linear learning-rate warm-up
    lr_schedule: str = "constant"      # after warm-up: 'constant', or 'cosine' (decays to 0 at the last step)
    ema_decay: float = 0.9995          # max EMA decay, reached after warm-up (0: no EMA)
    seed: int = 0
    log_every: int = 50                # loss read back (a GPU sync) and NaN check every this many steps
    checkpoint_every: int | None = None  # steps between checkpoints (None: only at the end)
    compile: bool = False              # torch.compile the model (CUDA only)
    device: str | None = None          # default: CUDA, then MPS, then CPU
    progress: bool = True

    def __post_init__(self):
        for name in ("steps", "batch_size", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be None or >= 1, got {self.checkpoint_every}")


@dataclass
class TrainResult:
    model: torch.nn.Module          # the trained (raw) weights
    ema: torch.nn.Module | None     # the EMA weights (use these for sampling)
    history: list                   # [(step, mean loss over the last log_every steps), ...]
    seconds: float                  # training wall time in this call
    images_per_second: float


def lr_factor(k: int, config: TrainConfig) -> float:
    r"""The learning rate of step k (0-based) over ``config.lr``: linear warm-up :math:`(k+1)/w`, then 1
    ('constant') or :math:`\tfrac12(1 + \cos(\pi\,\tfrac{k - w}{K - w}))` ('cosine', K = ``steps``)."""
    w = max(1, config.warmup_steps)
    if k < w:
        return (k + 1) / w
    if config.lr_schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (k - w) / max(1, config.steps - w))))


def pick_device(name: str | None = None) -> torch.device:
    """``name`` if given, else CUDA, then Apple's MPS, then the CPU."""
    if name is not None:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        import platform
        return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    return device.type


def autocast_dtype(device):
    """The autocast dtype on ``device`` (a ``torch.device`` or a string): bf16 on CUDA GPUs of compute capability 8.0
    and up, which run it natively; None (fp32) elsewhere: on the CPU bf16 is 25-35% slower than fp32 (measured,
    AVX-512 without AMX), and on older GPUs such as the T4 (7.5) it is emulated."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else None


def autocast(device):
    """The autocast context for training and sampling on ``device``: bf16 where :func:`autocast_dtype` says so,
    else a disabled context (fp32)."""
    amp = autocast_dtype(device)
    return torch.autocast("cuda", amp) if amp is not None else torch.autocast("cpu", enabled=False)


def _as_tuple(data):
    data = data if isinstance(data, (tuple, list)) else (data,)
    if not data or not all(isinstance(d, torch.Tensor) for d in data):
        raise TypeError("data must be a tensor or a tuple of tensors")
    n = data[0].shape[0]
    if any(d.shape[0] != n for d in data):
        raise ValueError(f"data tensors must share their first dimension, got {[tuple(d.shape) for d in data]}")
    if len({d.device for d in data}) > 1:
        raise ValueError(f"data tensors must be on one device, got {[str(d.device) for d in data]}")
    return tuple(data), n


def _fits_on_gpu(data, device) -> bool:
    if device.type != "cuda":
        return device.type == "mps"
    free, _ = torch.cuda.mem_get_info(device)
    return sum(d.numel() * d.element_size() for d in data) < 0.25 * free


def train(model: torch.nn.Module, data, loss_fn: Callable, config: TrainConfig | None = None,
          checkpoint_path=None, resume: bool = False, callback: Callable | None = None,
          **overrides) -> TrainResult:
    """Train ``model`` by minimising ``loss_fn(model, batch, generator)``; see the module docstring.

    Args:
        model: any ``nn.Module``; moved to the device in place.
        data: a tensor (N, ...) or a tuple of tensors (N, ...), e.g. ``(images, labels)``.
        loss_fn: ``(model, batch, generator) -> scalar loss``; ``batch`` is a tuple like ``data``.
        config: a :class:`TrainConfig`; keyword ``overrides`` replace its fields.
        checkpoint_path: where to write checkpoints (None: none are written).
        resume: continue from ``checkpoint_path`` when it exists.
        callback: ``(step, model, ema) -> bool | None``, called after each logged step (e.g. to
            evaluate); returning True stops training there, with a checkpoint written that is not
            marked complete (``resume=True`` continues the run).
    """
    config = TrainConfig(**{**asdict(config or TrainConfig()), **overrides})
    data, n = _as_tuple(data)
    device = pick_device(config.device)
    cuda = device.type == "cuda"
    is_image_model = any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    model.to(device, memory_format=torch.channels_last if cuda and is_image_model else torch.preserve_format)
    data = tuple(d.to(device) for d in data) if _fits_on_gpu(data, device) else data
    opt_kwargs = {"fused": True} if cuda else {}
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, **opt_kwargs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: lr_factor(k, config))
    ema = copy.deepcopy(model).eval().requires_grad_(False) if config.ema_decay > 0 else None
    data_device = data[0].device
    index_gen = torch.Generator(data_device).manual_seed(config.seed)        # which examples, where the data is
    noise_gen = torch.Generator(device).manual_seed(config.seed + 1)         # the loss's randomness
    step, history, seconds_before = 0, [], 0.0

    if resume and checkpoint_path is not None and Path(checkpoint_path).is_file():
        state = load_checkpoint(checkpoint_path)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["lr_scheduler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        index_gen.set_state(state["index_gen"])
        noise_gen.set_state(state["noise_gen"])
        step, history = state["step"], [tuple(h) for h in state["history"]]
        seconds_before = state.get("seconds", 0.0)

    def checkpoint(done: bool):
        if checkpoint_path is None:
            return
        save_checkpoint({"model": model.state_dict(), "ema": ema.state_dict() if ema is not None else None,
                         "optimizer": opt.state_dict(), "lr_scheduler": sched.state_dict(),
                         "index_gen": index_gen.get_state(), "noise_gen": noise_gen.get_state(),
                         "step": step, "history": history, "config": asdict(config), "complete": done,
                         "seconds": seconds_before + time.perf_counter() - start, "device": device_name(device)},
                        checkpoint_path)

    fwd = torch.compile(model) if config.compile and cuda else model
    ema_params = list(ema.parameters()) if ema is not None else []
    params = list(model.parameters())
    amp_context = autocast(device)
    from tqdm.auto import tqdm

    bar = tqdm(total=config.steps, initial=step, desc="training", disable=not config.progress, leave=False)
    running = torch.zeros((), device=device)
    start, first_step, last_sync = time.perf_counter(), step, step
    model.train()
    while step < config.steps:
        idx = torch.randint(0, n, (config.batch_size,), generator=index_gen, device=data_device)  # no host copy
        batch = tuple(d[idx].to(device, non_blocking=True) for d in data)
        if cuda and is_image_model:
            batch = tuple(b.contiguous(memory_format=torch.channels_last) if b.ndim == 4 else b for b in batch)
        with amp_context:
            loss = loss_fn(fwd, batch, noise_gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        opt.step()
        sched.step()
        step += 1
        if ema is not None:  # warm-up: average over the last ~k steps early on
            decay = min(config.ema_decay, (1 + step) / (10 + step))
            torch._foreach_lerp_(ema_params, [p.detach() for p in params], 1 - decay)
        running += loss.detach().float()
        save_now = bool(config.checkpoint_every) and step % config.checkpoint_every == 0 and step < config.steps
        if step % config.log_every == 0 or step == config.steps or save_now:
            k, last_sync = step - last_sync, step
            mean = running.item() / k  # the one GPU sync per log_every steps
            running.zero_()
            if not torch.isfinite(torch.tensor(mean)):
                bar.close()
                where = f"; the last good checkpoint is {checkpoint_path}" if checkpoint_path else ""
                raise TrainingDiverged(f"loss became {mean} between steps {step - k + 1} and {step}{where}. "
                                       "Lower lr or check the data.")
            history.append((step, mean))
            bar.set_postfix(loss=f"{mean:.4f}")
            if save_now:  # only after the loss was checked: a checkpoint is always a good one
                checkpoint(done=False)
            if callback is not None and callback(step, model, ema):
                bar.update(1)
                break  # the callback asked to stop: finish as if this were the last step
            model.train()
        bar.update(1)
    bar.close()
    seconds = time.perf_counter() - start
    checkpoint(done=step >= config.steps)  # a run stopped early by the callback can be resumed
    if ema is not None:  # buffers (e.g. BatchNorm statistics) are not averaged: take the latest
        for b_ema, b in zip(ema.buffers(), model.buffers()):
            b_ema.copy_(b)
    done = step - first_step
    return TrainResult(model=model, ema=ema, history=history, seconds=seconds,
                       images_per_second=done * config.batch_size / seconds if seconds > 0 else float("nan"))
