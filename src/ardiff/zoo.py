"""The book's trained models: recipes, shipped weights and model cards.

A :class:`Recipe` is a frozen description of one trained model: the model class and its full
config, the data (dataset, split, limit, source), the objective, the noise schedule, every
:class:`~ardiff.train.TrainConfig` field and the seed. Its :attr:`Recipe.hash` covers all of it, so a
changed default never loads stale weights.

The weights of every recipe ship inside the package (``ardiff/weights/NAME.pt``: EMA weights, fp32)
with a card in ``ardiff/weights/manifest.json`` (SHA-256, size, recipe hash, training time and
device, loss curve, the headline metric). :func:`load` checks the SHA-256 before parsing the file
and the recipe hash before using it; on a mismatch it raises :class:`ShippedWeightsError` naming the
file, the expected and found values and the command that retrains it. It never retrains silently:
only a missing file (or ``ARDIFF_RETRAIN=1``) trains the recipe, and it says so first.

>>> model = zoo.load("mnist-ddpm")          # eval mode, EMA weights
>>> zoo.recipe("mnist-ddpm").schedule       # the NoiseSchedule it was trained with
>>> zoo.card("mnist-ddpm")["metric"]        # FID with its n, floor and noise

Train one yourself: ``python -m ardiff train NAME`` (progress bar, checkpoints to the cache every few
minutes, resumes after an interruption, writes the weights file and its card at the end).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from .train import TrainConfig

__all__ = ["Recipe", "RECIPES", "ShippedWeightsError", "names", "recipe", "card", "load", "train_recipe",
           "evaluate", "ship", "weights_path", "WEIGHTS"]

WEIGHTS = Path(__file__).with_name("weights")
FORMAT_VERSION = 1  # bump when model code changes in a way that invalidates trained weights
MNIST_SOURCE = "MNIST IDX gzip files (LeCun et al.), SHA-256 verified"
CIFAR_SOURCE = ("CIFAR-10 decoded from a JPEG copy (shared/data/cifar10/*.npz, SHA-256 verified; not the official "
                "pixels); without ARDIFF_DATA the same images from the official tarball (MD5 verified)")
AR_KEYS = ("keep_rows", "lam", "pairing", "pool", "prior", "seed")


class ShippedWeightsError(RuntimeError):
    """A shipped weights file does not match its manifest or its recipe."""


@dataclass(frozen=True)
class Recipe:
    name: str
    model: str                      # 'UNet', 'PixelCNN', 'MnistClassifier' or 'ConvClassifier'
    config: dict                    # the model's full constructor config
    data: dict                      # dataset ('mnist', 'cifar10-subset', 'cifar10-cats'), split, limit, source
    objective: str                  # 'eps-mse' (DDPM), 'blockwise-eps-mse', 'nll' (PixelCNN, nats/dim),
                                    # 'cross-entropy', 'cross-entropy+hflip' (random horizontal flips)
    train: TrainConfig              # every training setting, the seed included
    schedule_spec: dict | None = None   # {'kind': 'linear', 'T': 1000, 'beta_start': ..., 'beta_end': ...}
    metric: dict = field(default_factory=dict)  # how the card's headline metric is measured
    minutes: float = 0.0            # training time on the project's 2-core CPU (for messages; not hashed)
    summary: str = ""               # one line for tables (not hashed)
    init: str | None = None         # fine-tuning: training starts from this recipe's shipped weights
    ar: dict | None = None          # method 1 (objective 'eps-mse+ar'): lam, pairing, keep_rows, prior, seed, pool

    def __post_init__(self):
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
        recipe that of its AR prior, so retraining either makes this recipe's weights stale.
        """
        d = {"name": self.name, "model": self.model, "config": self.config, "data": self.data,
             "objective": self.objective, "train": asdict(self.train), "schedule": self.schedule_spec,
             "metric": self.metric, "format": FORMAT_VERSION}
        if self.init is not None:  # only when set: the hashes of the from-scratch recipes stay as they were
            d["init"] = {"name": self.init, "sha256": _manifest().get(self.init, {}).get("sha256")}
        if self.ar is not None:
            d["ar"] = {**self.ar, "prior_sha256": _manifest().get(self.ar["prior"], {}).get("sha256")}
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
        """A freshly initialised model (seeded by the recipe's seed)."""
        torch.manual_seed(self.train.seed)
        if self.model == "UNet":
            from .unet import UNet
            return UNet(**self.config)
        if self.model == "PixelCNN":
            from .pixelcnn import PixelCNN
            return PixelCNN(**self.config)
        if self.model in ("MnistClassifier", "ConvClassifier"):  # one class; the MNIST recipe keeps its old name
            from .metrics import ConvClassifier
            return ConvClassifier(**self.config)
        raise ValueError(f"unknown model class {self.model!r}")

    def variant(self, name: str, **changes) -> "Recipe":
        """A copy under another name; ``train=dict(...)`` and ``config=dict(...)`` update those fields."""
        train = replace(self.train, **changes.pop("train", {}))
        config = {**self.config, **changes.pop("config", {})}
        return replace(self, name=name, train=train, config=config, **changes)


def _mnist(limit=None) -> dict:
    return {"dataset": "mnist", "split": "train", "limit": limit, "source": MNIST_SOURCE}


def _cifar(dataset: str, limit=None) -> dict:
    return {"dataset": dataset, "split": "train", "limit": limit, "source": CIFAR_SOURCE}


def _images(dataset: str, split: str, limit=None):
    """``(x, y)`` of a recipe's dataset: images in [-1, 1], (N, C, H, W), and labels (None for cats)."""
    from .data import load_cifar10_cats, load_cifar10_subset, load_mnist

    if dataset == "mnist":
        return load_mnist(split, limit=limit)
    if dataset == "cifar10-subset":
        return load_cifar10_subset(split, limit=limit)
    if dataset == "cifar10-cats":
        return load_cifar10_cats(split, limit=limit), None
    raise ValueError(f"unknown dataset {dataset!r}")


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
    Recipe("mnist-blockwise", "UNet", {**_UNET, "in_channels": 3, "out_channels": 1, "num_classes": 6}, _mnist(),
           "blockwise-eps-mse",
           TrainConfig(steps=2400, batch_size=128, lr=5e-4, warmup_steps=100, lr_schedule="cosine",
                       ema_decay=0.999, checkpoint_every=150, seed=0),
           schedule_spec=_SCHEDULE, metric={**_FID, "steps": 8, "block_rows": 7}, minutes=85,
           summary="Block-wise AR diffusion: the mnist-ddpm U-Net reading image + 2 row masks, h embedded (1-28 rows)"),
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
]}


def names() -> list[str]:
    return list(RECIPES)


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"name must be one of {names()}, got {name!r}")
    return RECIPES[name]


def weights_path(name: str, root=None) -> Path:
    return Path(root or WEIGHTS) / f"{recipe(name).name}.pt"


def _manifest(root=None) -> dict:
    path = Path(root or WEIGHTS) / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def card(name: str, root=None) -> dict:
    """The model card of a shipped model: sha256, bytes, recipe hash, steps, training seconds, device,
    torch version, date, final loss, loss history and the headline metric."""
    cards = _manifest(root)
    if recipe(name).name not in cards:
        raise ValueError(f"no shipped model card for {name!r}; train it with `python -m ardiff train {name}`")
    return cards[name]


# ---------------------------------------------------------------- training a recipe
def _data(r: Recipe, device=None, progress: bool = True, cache=None):
    """The training data of a recipe, and the seconds spent drawing method 1's AR partners (else None)."""
    from .pixelcnn import to_pixels

    x, y = _images(r.data["dataset"], r.data["split"], r.data["limit"])
    if r.objective == "eps-mse+ar":
        partners, seconds = _partners(r, x, device, progress, cache)
        return (x, partners), seconds
    return {"eps-mse": x, "blockwise-eps-mse": x, "nll": to_pixels(x), "cross-entropy": (x, y),
            "cross-entropy+hflip": (x, y)}[r.objective], None


_PARTNER_BATCH = 256


def _partners_path(r: Recipe, device=None, cache=None) -> Path:
    """Where a method-1 recipe's partners are cached: keyed by everything that decides them (the prior's
    SHA-256, pairing, seed, data, sampler batch, device type and code format), not by lam."""
    from .train import pick_device

    key = {k: v for k, v in r.to_dict()["ar"].items() if k != "lam"} | {
        "data": r.data, "batch": _PARTNER_BATCH, "device": pick_device(device).type, "format": FORMAT_VERSION}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return _cache_path(r, cache).with_name(f"partners-{digest}.pt")


def _shipped_input(name: str, why: str) -> torch.nn.Module:
    """A shipped model that another recipe is built on: never retrained on the fly, since the recipe's hash
    records the shipped file's SHA-256."""
    if name not in RECIPES or not weights_path(name).is_file() or name not in _manifest():
        raise ValueError(f"{why} needs the shipped weights of {name!r}; ship them first "
                         f"(`python -m ardiff train {name}`)")
    return load(name, device="cpu", retrain=False)


def _partners(r: Recipe, x: torch.Tensor, device=None, progress: bool = True, cache=None):
    """Method 1's AR partners of the training images (:func:`ardiff.arprior.ar_partners`), drawn once from
    the shipped prior and cached (they cost PixelCNN sampling time, which the card reports)."""
    from .arprior import ar_partners
    from .train import load_checkpoint, pick_device, save_checkpoint

    path = _partners_path(r, device, cache)
    if path.is_file():
        state = load_checkpoint(path)
        return state["partners"], state["seconds"]
    a = r.ar
    prior = _shipped_input(a["prior"], f"{r.name} (its AR partners)").to(pick_device(device))
    start = time.perf_counter()
    partners = ar_partners(prior, x.to(next(prior.parameters()).device), a["pairing"], keep_rows=a["keep_rows"],
                           seed=a["seed"], batch_size=_PARTNER_BATCH, pool=a["pool"], progress=progress)
    seconds = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint({"partners": partners, "seconds": seconds}, path)
    return partners, seconds


def _objective(r: Recipe):
    if r.objective == "eps-mse":
        from .ddpm import loss
        schedule = r.schedule
        return lambda m, batch, g: loss(m, batch[0], schedule, generator=g)
    if r.objective == "blockwise-eps-mse":  # one network for every block height (ardiff.blockwise)
        from .blockwise import loss
        schedule = r.schedule
        return lambda m, batch, g: loss(m, batch[0], schedule, generator=g)
    if r.objective == "nll":  # mean NLL per pixel in nats; / ln 2 = bits/dim
        return lambda m, batch, g: F.cross_entropy(m(batch[0]).float(), batch[0].long())
    if r.objective == "cross-entropy":
        return lambda m, batch, g: F.cross_entropy(m(batch[0]), batch[1])
    if r.objective == "cross-entropy+hflip":  # each image mirrored left-right with probability 1/2
        def flipped(m, batch, g):
            x = batch[0]
            flip = torch.rand(len(x), generator=g, device=x.device) < 0.5
            return F.cross_entropy(m(torch.where(flip[:, None, None, None], x.flip(-1), x)), batch[1])
        return flipped
    if r.objective == "eps-mse+ar":  # method 1: L_diff + lam * ||x0_hat - x0_AR||^2
        from .arprior import consistency_loss
        schedule, lam = r.schedule, r.ar["lam"]
        return lambda m, batch, g: consistency_loss(m, batch[0], batch[1], schedule, lam, generator=g)[0]
    raise ValueError(f"unknown objective {r.objective!r}")


def _cache_path(r: Recipe, root=None) -> Path:
    from .data import cache_dir
    return Path(root or cache_dir() / "zoo") / f"{r.name}-{r.hash}.pt"


def train_recipe(r: Recipe | str, device=None, progress: bool = True, cache=None):
    """Train a recipe (or load its finished run from the cache), resuming an interrupted run.

    Checkpoints go to ``<cache>/zoo/NAME-HASH.pt`` every ``train.checkpoint_every`` steps.
    Returns ``(model, info)``: the EMA weights (raw when the recipe has no EMA) in eval mode, and
    ``info`` with ``history``, ``seconds`` (all sessions together), ``steps``, ``device``.
    """
    from .train import load_checkpoint, save_checkpoint, train

    r = recipe(r) if isinstance(r, str) else r
    path = _cache_path(r, cache)
    state = load_checkpoint(path) if path.is_file() else None
    model = r.build()
    if state is None or not state.get("complete"):
        if r.init is not None and state is None:  # fine-tuning starts from the checked shipped weights
            model.load_state_dict(_shipped_input(r.init, f"{r.name} (fine-tuned from it)").state_dict())
        data, partner_seconds = _data(r, device, progress, cache)
        train(model, data, _objective(r), r.train, checkpoint_path=path, resume=True, device=device,
              progress=progress)
        state = load_checkpoint(path)
        if partner_seconds is not None:  # the partners' cost stays with the finished run
            state["partner_seconds"] = partner_seconds
            save_checkpoint(state, path)
    partner_seconds = state.get("partner_seconds")
    model = r.build()
    model.load_state_dict(state["ema"] if state.get("ema") is not None else state["model"])
    info = {"history": [tuple(h) for h in state["history"]], "seconds": state.get("seconds"),
            "steps": state["step"], "device": state.get("device"), "path": str(path),
            "final_loss": state["history"][-1][1] if state["history"] else None}
    if partner_seconds is not None:
        info["partner_seconds"] = partner_seconds
    from .train import pick_device
    return model.eval().to(pick_device(device)), info


# ---------------------------------------------------------------- the headline metric of a card
def evaluate(r: Recipe | str, model, classifier=None, progress: bool = True, **protocol) -> dict:
    """Measure a recipe's headline metric on ``model``, by the protocol in ``recipe.metric``.

    - 'accuracy': test accuracy on the recipe's test set (10,000 MNIST digits, or the CIFAR-10 test set);
    - 'bpd': exact test bits/dim of the PixelCNN on the test images (10,000 digits, or 1,000 cats);
    - 'fid': FID-MNIST (or FID-CIFAR, for cats) of n samples (the recipe's sampler and steps) against n test
      images, beside the real floor (n training images) and the FID of N(0, I) noise at the same n.
    """
    r = recipe(r) if isinstance(r, str) else r
    m = {**r.metric, **protocol}  # e.g. steps=10: the same protocol at another step count
    dev = next(model.parameters()).device
    if m["kind"] == "fid" and classifier is None:
        classifier = load(_FEATURE_NET[r.data["dataset"]], dev)  # may train (outside no_grad)
    with torch.no_grad():
        return _evaluate(r, m, model, classifier, dev, progress)


_FEATURE_NET = {"mnist": "mnist-classifier", "cifar10-cats": "cifar-classifier"}  # the FID of each dataset


def _evaluate(r: Recipe, m: dict, model, classifier, dev, progress: bool) -> dict:
    from .metrics import accuracy

    if m["kind"] == "accuracy":
        x, y = _images(r.data["dataset"], m["split"])
        return {"kind": "accuracy", "split": m["split"], "n": len(y), "value": accuracy(model, x, y)}
    if m["kind"] == "bpd":
        from .pixelcnn import to_pixels
        x = to_pixels(_images(r.data["dataset"], m["split"])[0])
        bpd = torch.cat([model.bits_per_dim(x[i:i + 100].to(dev)).cpu() for i in range(0, len(x), 100)])
        return {"kind": "bpd", "split": m["split"], "n": len(x), "value": bpd.mean().item(),
                "sem": (bpd.std() / len(bpd) ** 0.5).item()}
    if m["kind"] == "fid":
        from .ddpm import sample
        from .metrics import FidCifar, FidMnist
        fm = (FidMnist if r.data["dataset"] == "mnist" else FidCifar)(classifier, n=m["n"])
        shape = tuple(fm.classifier.input_shape)                  # (C, H, W) of the images
        g = torch.Generator(dev).manual_seed(m["seed"])
        if "block_rows" in m:  # block-wise diffusion: m["steps"] per block
            from . import blockwise
            chunks = [blockwise.sample(model, r.schedule, min(250, m["n"] - i), m["block_rows"], m["steps"], generator=g,
                                       method=m["method"], progress=progress) for i in range(0, m["n"], 250)]
            extra = {"block_rows": m["block_rows"]}
        else:
            clip = bool(m.get("clip_x0", False))   # x0_hat clipped to [-1, 1] in every step (only when the recipe says)
            chunks = [sample(model, r.schedule, (min(250, m["n"] - i), *shape), steps=m["steps"], method=m["method"],
                             generator=g, clip_x0=clip, progress=progress) for i in range(0, m["n"], 250)]
            extra = {"clip_x0": True} if clip else {}
        noise = torch.randn((m["n"], *shape), generator=torch.Generator().manual_seed(m["seed"] + 1))
        return {"kind": "fid", "n": m["n"], "method": m["method"], "steps": m["steps"], "value": fm(torch.cat(chunks)),
                "floor": fm.floor, "noise": fm(noise), **extra}
    raise ValueError(f"unknown metric kind {m['kind']!r}")


# ---------------------------------------------------------------- shipping and loading
def _sha256(path: Path) -> str:
    from .data import _digest
    return _digest(Path(path), "sha256")


def ship(name: str, model, info: dict, metric: dict, root=None) -> dict:
    """Write ``NAME.pt`` (the EMA state dict, fp32) and its card into the manifest, both atomically."""
    from .train import save_checkpoint

    r = recipe(name)
    root = Path(root or WEIGHTS)
    path = weights_path(name, root)
    tmp_weights = path.with_name(path.name + ".new")
    save_checkpoint({k: v.detach().float().cpu().contiguous() if v.is_floating_point() else v.cpu()
                     for k, v in model.state_dict().items()}, tmp_weights)
    history = info["history"]
    stride = max(1, len(history) // 200)  # at most ~200 points of the loss curve in the card
    entry = {"name": name, "file": path.name, "sha256": _sha256(tmp_weights), "bytes": tmp_weights.stat().st_size,
             "recipe_hash": r.hash, "recipe": r.to_dict(), "summary": r.summary,
             "parameters": sum(p.numel() for p in model.parameters()), "steps": info["steps"],
             "seconds": round(info["seconds"], 1), "device": info["device"], "torch": torch.__version__,
             "date": time.strftime("%Y-%m-%d", time.gmtime()), "final_loss": info["final_loss"],
             "history": [list(h) for h in history[::stride]] + ([list(history[-1])] if (len(history) - 1) % stride else []),
             "metric": metric, "command": f"python -m ardiff train {name}"}
    if "partner_seconds" in info:
        entry["partner_seconds"] = round(info["partner_seconds"], 1)
    cards = _manifest(root)
    cards[name] = entry
    tmp = root / "manifest.json.tmp"
    tmp.write_text(json.dumps(dict(sorted(cards.items())), indent=1) + "\n")
    os.replace(tmp_weights, path)  # both files are complete before either replaces the shipped one
    os.replace(tmp, root / "manifest.json")
    return entry


def load(name: str, device=None, retrain: bool | None = None, root=None) -> torch.nn.Module:
    """The shipped model ``name`` in eval mode, on ``device`` (default: CUDA, then MPS, then CPU).

    The file's SHA-256 is checked against the manifest before it is parsed (``weights_only=True``), and
    the manifest's recipe hash against the recipe in this code. ``retrain=True`` (or ``ARDIFF_RETRAIN=1``)
    trains the recipe instead (loading a finished run from the cache); so does a missing file, with a
    message saying so and how long it takes.
    """
    from .train import load_checkpoint, pick_device

    r = recipe(name)
    device = pick_device(device)
    if retrain is None:
        retrain = os.environ.get("ARDIFF_RETRAIN", "").strip().lower() not in ("", "0", "false", "no", "off")
    path = weights_path(name, root)
    if retrain or not path.is_file():
        why = "ARDIFF_RETRAIN is set" if retrain else f"no shipped weights at {path}"
        print(f"{name}: {why}; training it by its recipe (about {r.minutes:.0f} minutes on a 2-core CPU, "
              f"much less on a GPU; an interrupted run resumes)")
        return train_recipe(r, device=device)[0]
    entry = card(name, root)
    retrain_hint = f"retrain it with `python -m ardiff train {name}` (about {r.minutes:.0f} CPU-minutes)"
    if entry["recipe_hash"] != r.hash:
        raise ShippedWeightsError(f"{path}: trained by recipe {entry['recipe_hash']}, but the recipe in this code "
                                  f"hashes to {r.hash} (a setting changed); {retrain_hint}")
    data = path.read_bytes()  # hash and parse the same bytes
    found = hashlib.sha256(data).hexdigest()
    if found != entry["sha256"]:
        raise ShippedWeightsError(f"{path}: SHA-256 {found} does not match the manifest's {entry['sha256']}; "
                                  f"the file is damaged or was replaced; {retrain_hint}")
    model = r.build()
    model.load_state_dict(load_checkpoint(io.BytesIO(data)))
    return model.eval().to(device)
