"""The book's trained models as data: one frozen :class:`Recipe` per model, and the catalogue :data:`RECIPES`.

A recipe says everything that decides a model's weights: the model class and its full config, the data
(dataset, split, limit, source), the objective, the noise schedule, every
:class:`~ardiff.train.TrainConfig` field and the seed. :attr:`Recipe.hash` covers all of it (and, for a
recipe that starts from or learns against another shipped model, that model's SHA-256), so a changed
setting never loads stale weights. :mod:`ardiff.zoo` trains, ships and loads them.

>>> r = recipe("mnist-ddpm")
>>> r.hash, r.schedule.T, r.train.steps      # ('...', 1000, 2400)
>>> model = r.build()                         # freshly initialised, seeded by the recipe's seed
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

import torch

from .shipped import sha256 as shipped_sha256
from .train import TrainConfig

__all__ = ["Recipe", "RECIPES", "names", "recipe", "images", "FORMAT_VERSION"]

FORMAT_VERSION = 1  # bump when model code changes in a way that invalidates trained weights
MNIST_SOURCE = "MNIST IDX gzip files (LeCun et al.), SHA-256 verified"
CIFAR_SOURCE = ("CIFAR-10 decoded from a JPEG copy (shared/data/cifar10/*.npz, SHA-256 verified; not the official "
                "pixels); without ARDIFF_DATA the same images from the official tarball (MD5 verified)")
AR_KEYS = ("keep_rows", "lam", "pairing", "pool", "prior", "seed")
MODELS = ("UNet", "PixelCNN", "MnistClassifier", "ConvClassifier", "AbsorbingNet")
DATASETS = ("mnist", "cifar10-subset", "cifar10-cats")


@dataclass(frozen=True)
class Recipe:
    """One trained model of the book as plain data: what to build, on what data, by what objective and settings."""
    name: str
    model: str                      # 'UNet', 'PixelCNN', 'MnistClassifier', 'ConvClassifier' or 'AbsorbingNet'
    config: dict                    # the model's full constructor config
    data: dict                      # dataset ('mnist', 'cifar10-subset', 'cifar10-cats'), split, limit, source
    objective: str                  # 'eps-mse' (DDPM), 'blockwise-eps-mse', 'nll' (PixelCNN, nats/dim),
                                    # 'cross-entropy', 'cross-entropy+hflip' (random horizontal flips),
                                    # 'absorbing-nll' (ARDM's order-agnostic bound, nats/dim)
    train: TrainConfig              # every training setting, the seed included
    schedule_spec: dict | None = None   # {'kind': 'linear', 'T': 1000, 'beta_start': ..., 'beta_end': ...}
    metric: dict = field(default_factory=dict)  # how the card's headline metric is measured
    minutes: float = 0.0            # training time on the project's 2-core CPU (for messages; not hashed)
    summary: str = ""               # one line for tables (not hashed)
    init: str | None = None         # fine-tuning: training starts from this recipe's shipped weights
    ar: dict | None = None          # method 1 (objective 'eps-mse+ar'): lam, pairing, keep_rows, prior, seed, pool
    block_rows: int | None = None   # objective 'blockwise-eps-mse': the one block height trained (None: every
                                    # height of ardiff.blockwise.BLOCK_ROWS, one drawn per image)

    def __post_init__(self):
        if self.block_rows is not None:
            from .blockwise import BLOCK_ROWS
            if self.objective != "blockwise-eps-mse" or self.block_rows not in BLOCK_ROWS:
                raise ValueError(f"{self.name}: block_rows goes with objective 'blockwise-eps-mse' and must be one of "
                                 f"{BLOCK_ROWS}, got {self.block_rows!r} with {self.objective!r}")
        if (self.ar is not None) != (self.objective == "eps-mse+ar"):
            raise ValueError(f"{self.name}: objective 'eps-mse+ar' and the ar settings go together")
        if self.ar is not None and set(self.ar) != set(AR_KEYS):
            raise ValueError(f"{self.name}: ar must have exactly the keys {AR_KEYS}, got {sorted(self.ar)}")
        if self.ar is not None:
            from .arprior import PAIRINGS, _check_lam
            if _check_lam(self.ar["lam"]) == 0:
                raise ValueError(f"{self.name}: ar lam must be > 0 (lam = 0 is the plain loss: a recipe with objective "
                                 f"'eps-mse', like mnist-ddpm-ft, without partners to draw)")
            if self.ar["pairing"] not in PAIRINGS:
                raise ValueError(f"{self.name}: ar pairing must be one of {PAIRINGS}, got {self.ar['pairing']!r}")

    def to_dict(self) -> dict:
        """Everything that determines the weights (and the metric's protocol), as plain JSON values.

        A fine-tuned recipe includes the SHA-256 of the shipped weights it starts from, and a method-1
        recipe that of its AR prior (both read from the manifest by :func:`ardiff.shipped.sha256`), so
        retraining either makes this recipe's weights stale.
        """
        d = {"name": self.name, "model": self.model, "config": self.config, "data": self.data,
             "objective": self.objective, "train": asdict(self.train), "schedule": self.schedule_spec,
             "metric": self.metric, "format": FORMAT_VERSION}
        if self.init is not None:  # only when set: the hashes of the from-scratch recipes stay as they were
            d["init"] = {"name": self.init, "sha256": shipped_sha256(self.init)}
        if self.ar is not None:
            d["ar"] = {**self.ar, "prior_sha256": shipped_sha256(self.ar["prior"])}
        if self.block_rows is not None:  # only when set: mnist-blockwise keeps its hash
            d["block_rows"] = self.block_rows
        return json.loads(json.dumps(d, sort_keys=True, default=list))

    @property
    def hash(self) -> str:
        """16 hex digits of the SHA-256 of :meth:`to_dict` as canonical JSON."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def schedule(self):
        """The :class:`~ardiff.schedules.NoiseSchedule` of a diffusion recipe (None otherwise)."""
        if self.schedule_spec is None:
            return None
        from .schedules import NoiseSchedule

        spec = dict(self.schedule_spec)
        return getattr(NoiseSchedule, spec.pop("kind"))(**spec)

    def build(self) -> torch.nn.Module:
        """A freshly initialised model, seeded by the recipe's seed; the caller's random state is left alone.

        The seed goes to a forked CPU generator (``torch.random.fork_rng``), so the weights are exactly
        those of ``torch.manual_seed(seed); Model(**config)`` (the shipped runs started from them), and the
        global random state after a build (or a :func:`ardiff.zoo.load`) is what it was before.
        """
        if self.model == "UNet":
            from .unet import UNet as cls
        elif self.model == "PixelCNN":
            from .pixelcnn import PixelCNN as cls
        elif self.model == "AbsorbingNet":
            from .absorbing import AbsorbingNet as cls
        elif self.model in ("MnistClassifier", "ConvClassifier"):  # one class; the MNIST recipe keeps its old name
            from .metrics import ConvClassifier as cls
        else:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        with torch.random.fork_rng(devices=[]):  # restores the CPU generator on exit; CUDA is not touched
            torch.default_generator.manual_seed(self.train.seed)  # models are built on the CPU
            return cls(**self.config)

    def variant(self, name: str, **changes) -> "Recipe":
        """A copy under another name; ``train=dict(...)`` and ``config=dict(...)`` update those fields."""
        train = replace(self.train, **changes.pop("train", {}))
        config = {**self.config, **changes.pop("config", {})}
        return replace(self, name=name, train=train, config=config, **changes)


def _mnist(limit=None) -> dict:
    return {"dataset": "mnist", "split": "train", "limit": limit, "source": MNIST_SOURCE}


def _cifar(dataset: str, limit=None) -> dict:
    return {"dataset": dataset, "split": "train", "limit": limit, "source": CIFAR_SOURCE}


def images(dataset: str, split: str, limit=None):
    """``(x, y)`` of a recipe's dataset: images in [-1, 1], (N, C, H, W), and labels (None for cats)."""
    from .data import load_cifar10_cats, load_cifar10_subset, load_mnist

    if dataset == "mnist":
        return load_mnist(split, limit=limit)
    if dataset == "cifar10-subset":
        return load_cifar10_subset(split, limit=limit)
    if dataset == "cifar10-cats":
        return load_cifar10_cats(split, limit=limit), None
    raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")


_UNET = dict(in_channels=1, image_size=28, base_channels=32, channel_mults=[1, 2, 2], num_res_blocks=2,
             attention=True, num_heads=4, num_classes=None, dropout=0.0, groups=8)

_SCHEDULE = {"kind": "linear", "T": 1000, "beta_start": 1e-4, "beta_end": 0.02}
_FID = {"kind": "fid", "n": 1000, "method": "ddim", "steps": 50, "seed": 0}
_FT_MINUTES = 20
_FINETUNE_CONTROL = Recipe(
    "mnist-ddpm-ft", "UNet", _UNET, _mnist(limit=10_000), "eps-mse",
    TrainConfig(steps=600, batch_size=128, lr=2e-4, warmup_steps=50, lr_schedule="cosine", ema_decay=0.999,
                checkpoint_every=100, seed=1),
    schedule_spec=_SCHEDULE, metric=_FID, minutes=_FT_MINUTES, init="mnist-ddpm",
    summary="mnist-ddpm continued for 600 steps on the first 10,000 digits: lesson 04's lambda = 0 control")


def _method1_name(pairing: str, lam: float) -> str:
    return f"mnist-ddpm-ar-{pairing}-{lam:g}"


def _method1(pairing: str, lam: float) -> Recipe:
    """Method 1 (``ardiff.arprior.consistency_loss``) continuing the shipped DDPM, with the control's budget."""
    return replace(_FINETUNE_CONTROL, name=_method1_name(pairing, lam), objective="eps-mse+ar", minutes=_FT_MINUTES,
                   ar={"lam": lam, "pairing": pairing, "keep_rows": 14, "prior": "mnist-pixelcnn", "seed": 0,
                       "pool": 1000 if pairing == "sample" else None},
                   summary=f"mnist-ddpm continued with method 1 (AR consistency loss, {pairing} partners, lambda {lam:g})")


_BLOCK_UNET = {**_UNET, "in_channels": 3, "out_channels": 1, "num_classes": 6}   # image + 2 row masks in, eps out; h embedded
BLOCKWISE_HEIGHTS = (2, 4, 7, 14)   # h = 28 is mnist-ddpm itself


def _blockwise(h: int) -> Recipe:
    """A block model for one height h, fine-tuned from mnist-ddpm (BD3-LM's practice, Arriola et al. 2025): the
    DDPM's weights with zero weights on the two mask channels and a zero embedding of h
    (:func:`ardiff.blockwise.init_from_ddpm`), so it starts as the DDPM at h = 28; every training image gets one
    random block of h rows supervised (:func:`ardiff.blockwise.loss` with ``block_rows=(h,)``).

    One model per height, not one for all: the shared ``mnist-blockwise`` split its budget over six heights (one
    random block per image, from scratch), so each height got about a sixth of it, and it failed the sanity gate
    (its ε-MSE on its block's pixels above the DDPM's; median ratio 1.18, worst 1.94). A probe for h = 7 from the
    DDPM fell from ratios [1.8, 2.1, 4.1, 58] at t = 100/300/600/900 to [1.07, 1.08, 0.68, 0.97] in 400 steps of 64
    and was still falling: 1,500 steps (about 25 CPU-minutes) per height. The embedding keeps mnist-blockwise's six
    labels (only h's row is trained), so one sampler and one loss serve both kinds.
    """
    return Recipe(f"mnist-blockwise-h{h}", "UNet", _BLOCK_UNET, _mnist(), "blockwise-eps-mse",
                  TrainConfig(steps=1500, batch_size=64, lr=2e-4, warmup_steps=50, lr_schedule="cosine",
                              ema_decay=0.999, checkpoint_every=100, seed=0),
                  schedule_spec=_SCHEDULE, metric={**_FID, "steps": 8, "block_rows": h, "spacing": "trailing"},
                  minutes=25, init="mnist-ddpm", block_rows=h,
                  summary=f"Block-wise AR diffusion, blocks of {h} rows only: mnist-ddpm fine-tuned, reading image + "
                          f"2 row masks (zero-initialised)")


RECIPES = {r.name: r for r in [
    Recipe("mnist-classifier", "MnistClassifier", {"width": 32, "feature_dim": 128}, _mnist(), "cross-entropy",
           TrainConfig(steps=3000, batch_size=128, lr=2e-3, warmup_steps=50, lr_schedule="cosine", ema_decay=0.0,
                       checkpoint_every=500, seed=0),
           metric={"kind": "accuracy", "split": "test"}, minutes=4,
           summary="The feature network of FID-MNIST (3 conv layers, 128-d features)"),
    Recipe("mnist-ddpm", "UNet", _UNET, _mnist(), "eps-mse",
           TrainConfig(steps=2400, batch_size=128, lr=5e-4, warmup_steps=100, lr_schedule="cosine",
                       ema_decay=0.999, checkpoint_every=150, seed=0),
           schedule_spec=_SCHEDULE, metric=_FID, minutes=80,
           summary="DDPM noise predictor, U-Net 1.54 M (base 32, mults 1-2-2, attention), linear schedule"),
    Recipe("mnist-pixelcnn", "PixelCNN", {"channels": 48, "dilations": [1, 2, 1, 4, 1, 2, 1], "kernel": 3,
                                          "zero_init_head": True}, _mnist(), "nll",
           TrainConfig(steps=3200, batch_size=64, lr=1e-3, warmup_steps=100, lr_schedule="cosine",
                       ema_decay=0.999, checkpoint_every=150, seed=0),
           metric={"kind": "bpd", "split": "test"}, minutes=85,
           summary="Gated PixelCNN (48 channels, 8 layers), 256-way softmax per pixel"),
    # Lesson 04, method 1 (AR consistency loss): each model continues the shipped DDPM for the same steps, on the
    # same 10,000 digits, in the same order (same seed), as a control that continues with lam = 0.
    _FINETUNE_CONTROL,
    *[_method1(pairing, lam) for pairing, lam in (("completion", 0.1), ("completion", 1.0), ("sample", 0.1))],
    # Lesson 07 (block-wise diffusion): one network for every block height, trained with exactly mnist-ddpm's settings and budget.
    Recipe("mnist-blockwise", "UNet", _BLOCK_UNET, _mnist(),
           "blockwise-eps-mse",
           TrainConfig(steps=2400, batch_size=128, lr=5e-4, warmup_steps=100, lr_schedule="cosine",
                       ema_decay=0.999, checkpoint_every=150, seed=0),
           schedule_spec=_SCHEDULE, metric={**_FID, "steps": 8, "block_rows": 7}, minutes=85,
           summary="Block-wise AR diffusion: the mnist-ddpm U-Net reading image + 2 row masks, h embedded (1-28 rows)"),
    # Lesson 07, rebuilt (issue 28): one block model per height, each fine-tuned from mnist-ddpm.
    *[_blockwise(h) for h in BLOCKWISE_HEIGHTS],
    # Lesson 06 (CIFAR-10 cats). The feature network of FID-CIFAR, trained on all ten classes of the subset.
    Recipe("cifar-classifier", "ConvClassifier", {"width": 32, "feature_dim": 128, "in_channels": 3, "image_size": 32,
                                                  "convs": 2, "dropout": 0.2}, _cifar("cifar10-subset"),
           "cross-entropy+hflip",
           TrainConfig(steps=2400, batch_size=128, lr=2e-3, warmup_steps=100, lr_schedule="cosine", ema_decay=0.0,
                       checkpoint_every=500, seed=0),
           metric={"kind": "accuracy", "split": "test"}, minutes=8,
           summary="The feature network of FID-CIFAR (6 conv layers, 128-d features), 20,000 images of 10 classes"),
    # The course study's DDPM as published (Murariu 2025). Left open by the study, chosen here: U-Net width 32 with
    # levels 1-2-2 and one residual block per level ("simplified", no attention); AdamW with PyTorch's default
    # weight decay 0.01, no warm-up, constant lr, no EMA, no gradient clipping; "several epochs" = the CPU budget
    # of cats-ddpm (45 minutes here: 8,000 steps of 32, 51 epochs of the 5,000 training cats).
    Recipe("cats-ddpm-s2", "UNet", {**_UNET, "in_channels": 3, "image_size": 32, "num_res_blocks": 1, "attention": False},
           _cifar("cifar10-cats"), "eps-mse",
           TrainConfig(steps=8000, batch_size=32, lr=1e-4, weight_decay=0.01, grad_clip=None, warmup_steps=0,
                       lr_schedule="constant", ema_decay=0.0, checkpoint_every=250, seed=0),
           schedule_spec={"kind": "linear", "T": 100, "beta_start": 1e-4, "beta_end": 0.05},
           metric={"kind": "fid", "n": 1000, "method": "ddpm", "steps": 100, "seed": 0}, minutes=45,
           summary="The course study's cat DDPM: linear beta 1e-4 to 0.05 over T = 100, AdamW lr 1e-4, batch 32"),
    # The book's fixes, same data and CPU budget: T = 1000 cosine schedule, warm-up to a 5x higher lr with cosine
    # decay, EMA with warm-up, two residual blocks per level and attention (mnist-ddpm's U-Net, 1.54 M).
    Recipe("cats-ddpm", "UNet", {**_UNET, "in_channels": 3, "image_size": 32}, _cifar("cifar10-cats"), "eps-mse",
           TrainConfig(steps=2700, batch_size=64, lr=5e-4, warmup_steps=200, lr_schedule="cosine", ema_decay=0.999,
                       checkpoint_every=150, seed=0),
           # Sampled with x0_hat clipped to [-1, 1], as Ho et al.'s and Nichol & Dhariwal's code do: the cosine schedule's
           # last step has abar = 2.4e-9, so an unclipped x0_hat = (x_t - sqrt(1 - abar) eps) / sqrt(abar) there blows up
           # any error in eps by ~20,000 (measured: DDIM-50 unclipped FID 612 at n = 200, above noise; clipped 96.8;
           # ancestral 50 steps clipped 43.4, floor 32.5).
           schedule_spec={"kind": "cosine", "T": 1000}, metric={**_FID, "method": "ddpm", "steps": 50, "clip_x0": True},
           minutes=45,
           summary="Cat DDPM with the book's fixes: cosine schedule over T = 1000, lr warm-up, EMA, 1.54 M U-Net"),
    # The autoregressive side of lesson 06: lesson 03's PixelCNN for colour, with the DDPMs' 45 minutes of this CPU.
    Recipe("cats-pixelcnn", "PixelCNN", {"channels": 48, "dilations": [1, 2, 1, 4, 1, 2, 1], "kernel": 3,
                                         "zero_init_head": True, "in_channels": 3}, _cifar("cifar10-cats"), "nll",
           TrainConfig(steps=2500, batch_size=32, lr=1e-3, warmup_steps=100, lr_schedule="cosine",
                       ema_decay=0.999, checkpoint_every=150, seed=0),
           metric={"kind": "bpd", "split": "test"}, minutes=45,
           summary="RGB gated PixelCNN (48 channels, 8 layers), sub-pixels R, G, B, 256-way softmax each"),
    # Lesson 08 (absorbing diffusion): mnist-ddpm's U-Net reading the visible pixels and their mask, with a 256-way
    # head per pixel, trained on ARDM's order-agnostic bound. The probe before filing: 64 img/s at batch 64 (1.6 M
    # parameters), 1.111 bits/dim after 12 minutes (500 test digits, 2 orders each).
    Recipe("mnist-absorbing", "AbsorbingNet", {**_UNET, "in_channels": 2, "out_channels": 256}, _mnist(),
           "absorbing-nll",
           TrainConfig(steps=6000, batch_size=64, lr=1e-3, warmup_steps=200, lr_schedule="cosine", ema_decay=0.999,
                       checkpoint_every=250, seed=0),
           metric={"kind": "bpd-bound", "split": "test", "n": None, "draws": 1, "seed": 0}, minutes=100,
           summary="Order-agnostic AR as absorbing diffusion: the mnist-ddpm U-Net on visible pixels + mask, "
                   "256-way head, ARDM's bound"),
]}


def names() -> list[str]:
    """The names of every recipe, in the catalogue's order."""
    return list(RECIPES)


def recipe(name: str) -> Recipe:
    """The recipe called ``name``; ValueError naming the known ones otherwise."""
    if name not in RECIPES:
        raise ValueError(f"name must be one of {names()}, got {name!r}")
    return RECIPES[name]
