"""Run profiles: how much a lesson *measures*. ``quick``: CI and a laptop (small n, few configurations);
``full``: the book's stored outputs (sample sizes large enough for stable verdicts).

Which trained models exist is the zoo's business (:mod:`ardiff.zoo`): every lesson loads the shipped
weights in both profiles, so ``full`` runs on the project's 2-core CPU.

The profile comes from ``$ARDIFF_PROFILE`` ('quick' or 'full'); when unset it is ``full`` if CUDA is
available, else ``quick``. Each lesson reads the sizes it needs from the :class:`Profile` it gets
from :func:`setup`, the one call of every lesson's first cell.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = ["Profile", "PROFILES", "get_profile", "setup", "glue", "REPOSITORY", "SETUP_CELL"]

REPOSITORY = "https://github.com/ardiff-book/ardiff"   # as in _config.yml (a test keeps the two equal)


@dataclass(frozen=True)
class Profile:
    name: str
    # lesson 01: forward noising
    chain_samples: int   # Monte-Carlo chains per timestep when checking q_step against q_sample
    signal_draws: int    # noisy copies of each of 256 digits when measuring the signal left at step t
    explorer_size: int   # side of the photograph shown in the schedule explorer
    # lesson 02: DDPM and DDIM (FID-MNIST is shared by every later lesson)
    fid_n: int                     # samples per FID, compared with as many test digits
    fid_draws: int                 # bootstrap resamples for the spread of an FID difference
    compare_n: int                 # lesson 02: samples per sampler configuration (its FIDs are at this n)
    sample_steps: tuple            # sampler steps compared in lesson 02 (ancestral and DDIM)
    dpm_steps: tuple               # lesson 02: DPM-Solver++ steps
    ddim_long_steps: tuple         # lesson 02: DDIM steps on the way to the ODE's limit (the last is the limit)
    ddim_long_n: int               # lesson 02: samples whose distance to that limit is measured
    selftrain_steps: int           # "train it yourself": steps of the shipped recipe a lesson runs
    selftrain_batch: int
    # lesson 03: PixelCNN
    pcnn_bpd_goal: float           # test bits/dim the shipped PixelCNN must stay below (a sanity gate: the working model)
    pcnn_tp_batch: int             # lesson 03: the batch of the throughput regime of the speed comparison
    bpd_n: int                     # test digits the shipped PixelCNN's bits/dim is measured on
    pcnn_sizes: tuple              # image sides for the sampling-cost measurement
    # lesson 04: AR priors for diffusion
    ar_steps: int                  # ancestral steps of the method comparison (principled: up to these)
    ar_alphas: tuple               # method 2: blend weights
    ar_t_starts: tuple             # principled variant: forward-noise the AR sample to these steps
    ar_step_grid: tuple            # steps of the steps-vs-FID curves
    ar_control_steps: tuple        # steps at which the principled start meets its controls (data mean, Gaussian, oracle)
    # lesson 05: spectral autoregression
    spec_photo_size: int           # side of the photographs
    spec_images: int               # MNIST digits / CIFAR cats averaged per spectrum
    spec_traj_n: int               # samples whose x0_hat spectra are followed along the reverse process
    # lesson 06: autoregression vs diffusion on CIFAR-10 cats
    cats_n: int                    # samples per FID-CIFAR and spectral distance, against as many test cats
    cats_ddim_steps: tuple         # DDIM steps of cats-ddpm compared
    cats_bound_n: int              # test cats of the likelihood row
    cats_bound_steps: int          # stratified KL terms of cats-ddpm's bound (T = 1000); cats-ddpm-s2 uses all 99
    cats_dpm_steps: tuple          # DPM-Solver++ steps of cats-ddpm compared
    cats_time_batch: int           # the throughput regime's batch (latency is batch 1)
    cats_time_steps: int           # diffusion steps timed per sampler (every step costs the same; scaled to the chain)
    cats_pcnn_time_rows: int       # PixelCNN rows timed (every row costs about the same; scaled to 32 rows)
    cats_time_repeats: int         # timed calls per sampler and regime (median and interquartile range)
    # lesson 07: block-wise autoregressive diffusion
    bw_n: int                      # samples per setting up to bw_max_nfe: the first bw_corner_n select, the rest confirm
    bw_steps: tuple                # steps per block S of the grid (a height's largest S run is its plateau reference)
    bw_max_nfe: int                # grid settings above this many network evaluations per image are not run at bw_n
    bw_ddpm_steps: tuple           # DDIM steps of the reference DDPM (the old lesson 07 only)
    bw_corner_n: int               # the selection split and the plateau test (every setting), and the costly corner's n
    bw_corner_max_nfe: int         # corner settings above this many evaluations per image are not run at all
    bw_pilot_n: int                # pilot: samples per sampler that pick each setting's sampler (own held-out FID)
    bw_pilot_max_nfe: int          # pilot: settings up to this many evaluations; above, a height's last pick holds
    bw_gate_n: int                 # held-out test digits of the block-wise gate
    bw_margin: float               # plateau and matched-quality margin δ: this share of the real floor at the same n,
                                   # one FID margin for every height (stated before measuring)
    bw_tf_steps: int               # S of the teacher-forcing (compounding) test
    bw_time_batch: int             # the throughput regime's batch (latency is batch 1)
    bw_time_steps: int             # network evaluations timed per call (each costs the same; scaled to the chain)
    # lesson 08: autoregression as absorbing diffusion (one network pass costs ~5 ms per image on 2 CPU cores)
    abs_n: int                     # samples per FID-MNIST (against as many test digits)
    abs_steps: tuple               # decoding steps of the parallel-decoding curve, random order (784 = exact AR)
    abs_order_steps: int           # steps at which raster, random and coarse-to-fine orders are sampled (in abs_steps)
    abs_dpm_steps: tuple           # DPM-Solver++ steps of mnist-ddpm beside the curve (equal evaluations where shared)
    abs_bpd_n: int                 # test digits of the likelihood table (the bound, the PixelCNN)
    abs_draws: int                 # draws of (order, step) per digit for the bound
    abs_exact_n: int               # test digits of the exact NLLs (784 passes per order and batch of <= 64 digits)
    abs_identity_draws: int        # bound draws per digit on those digits (the identity on the trained network)
    abs_ddpm_n: int                # test digits of mnist-ddpm's variational bound (clipped and not)
    abs_ddpm_terms: int            # its stratified KL terms (terms + 1 passes per digit and bound)
    abs_time_batch: int            # the throughput regime's batch of the speed comparison (latency is batch 1)


PROFILES = {
    "quick": Profile("quick", chain_samples=2_000, signal_draws=16, explorer_size=96,
                     fid_n=100, fid_draws=20, compare_n=300, sample_steps=(10, 20), dpm_steps=(5, 10, 20),
                     ddim_long_steps=(50, 100), ddim_long_n=16, selftrain_steps=60, selftrain_batch=32,
                     pcnn_bpd_goal=1.15, pcnn_tp_batch=4, bpd_n=1_000, pcnn_sizes=(8, 12, 16, 20),
                     ar_steps=10, ar_alphas=(0.0, 0.25, 0.5, 0.75, 1.0),
                     ar_t_starts=(200, 600), ar_step_grid=(5, 10), ar_control_steps=(5, 10),
                     spec_photo_size=128, spec_images=1000, spec_traj_n=64,
                     cats_n=64, cats_ddim_steps=(10, 20), cats_bound_n=20, cats_bound_steps=20,
                     cats_dpm_steps=(10,), cats_time_batch=8, cats_time_steps=2, cats_pcnn_time_rows=1, cats_time_repeats=5,
                     bw_n=100, bw_steps=(1, 4), bw_max_nfe=28, bw_ddpm_steps=(10, 20),
                     bw_corner_n=50, bw_corner_max_nfe=56, bw_pilot_n=50, bw_pilot_max_nfe=8, bw_gate_n=64,
                     bw_margin=0.2, bw_tf_steps=1, bw_time_batch=8, bw_time_steps=1,
                     abs_n=100, abs_steps=(49, 16, 8), abs_order_steps=16, abs_dpm_steps=(8, 16), abs_bpd_n=100,
                     abs_draws=4, abs_exact_n=2, abs_identity_draws=50, abs_ddpm_n=100, abs_ddpm_terms=10,
                     abs_time_batch=8),
    "full": Profile("full", chain_samples=20_000, signal_draws=32, explorer_size=128,
                    fid_n=1_000, fid_draws=200, compare_n=1_000, sample_steps=(10, 20, 50), dpm_steps=(5, 10, 20, 50),
                    ddim_long_steps=(100, 250, 1000), ddim_long_n=64, selftrain_steps=300, selftrain_batch=64,
                    pcnn_bpd_goal=1.15, pcnn_tp_batch=16, bpd_n=10_000, pcnn_sizes=(8, 16, 28, 40, 56),
                    ar_steps=20, ar_alphas=(0.0, 0.25, 0.5, 0.75, 1.0),
                    ar_t_starts=(200, 400, 600), ar_step_grid=(5, 10, 20, 50), ar_control_steps=(5, 10),
                    spec_photo_size=256, spec_images=5000, spec_traj_n=256,
                    cats_n=500, cats_ddim_steps=(20, 50), cats_bound_n=200, cats_bound_steps=100,
                    cats_dpm_steps=(10, 20), cats_time_batch=256, cats_time_steps=5, cats_pcnn_time_rows=4, cats_time_repeats=5,
                    bw_n=400, bw_steps=(1, 2, 4, 8, 16, 32, 64), bw_max_nfe=128, bw_ddpm_steps=(10, 20, 50, 100),
                    bw_corner_n=200, bw_corner_max_nfe=448, bw_pilot_n=100, bw_pilot_max_nfe=32, bw_gate_n=500,
                    bw_margin=0.2, bw_tf_steps=8, bw_time_batch=128, bw_time_steps=2,
                    abs_n=400, abs_steps=(784, 196, 98, 49, 28, 16, 8), abs_order_steps=98,
                    abs_dpm_steps=(8, 16, 28, 49, 98), abs_bpd_n=10_000, abs_draws=2, abs_exact_n=32,
                    abs_identity_draws=20, abs_ddpm_n=400, abs_ddpm_terms=50, abs_time_batch=64),
}


def get_profile(name: str | None = None) -> Profile:
    """The profile named, else ``$ARDIFF_PROFILE``, else 'full' with CUDA and 'quick' without."""
    if name is None:
        name = os.environ.get("ARDIFF_PROFILE") or ("full" if torch.cuda.is_available() else "quick")
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)} (ARDIFF_PROFILE), got {name!r}")
    return PROFILES[name]


def glue(name: str, value):
    """Store ``value`` for the book's prose, without displaying it: numbers as ``{glue:text}`name:.1f```,
    words as ``{glue:md}`name```, so the text and the outputs cannot disagree. Outside the book's
    toolchain (no ``myst_nb``, e.g. in Colab) nothing is stored. Returns ``value``."""
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return value
    if isinstance(value, str):
        from IPython.display import Markdown
        _glue(name, Markdown(value), display=False)
    else:
        _glue(name, value.item() if hasattr(value, "item") else value, display=False)
    return value


SETUP_CELL = """\
# Setup. The first run in Colab installs ardiff; pip keeps Colab's own torch (any torch >= 2.1 will do).
# Then: check that the imported ardiff is the version this notebook was written for, pick the profile
# (quick on a CPU, full on a GPU; override with ARDIFF_PROFILE), and say what runs where.
try:
    import ardiff
except ImportError:
    %pip install -q "ardiff @ git+{repository}"
    import ardiff  # still failing? Runtime > Restart session, then run this cell again
if ardiff.__version__ != "{version}":  # an older install, or modules imported before an upgrade
    print('This notebook is for ardiff {version}: run %pip install -U "ardiff @ git+{repository}", '
          "then restart the runtime (Colab: Runtime > Restart session) and run the notebook from the top.")
profile, device = ardiff.profiles.setup(dataset="{dataset}")"""


def setup(dataset: str = "mnist", profile: str | None = None, device: str | None = None, seed: int = 0):
    """The first cell of every lesson: pick the profile and device, seed, and say what runs where.

    Args:
        dataset: 'mnist', 'cifar10_cat' or 'photos' (named in the printout).
        profile: 'quick' or 'full'; default from ``$ARDIFF_PROFILE`` or the hardware.
        device: a torch device string; default CUDA, then MPS, then CPU.
        seed: seeds ``torch.manual_seed`` so that the lesson reproduces.
    Returns:
        ``(profile, device)``.
    """
    from .data import describe_source
    from .train import device_name, pick_device

    prof = get_profile(profile)
    dev = pick_device(device)
    torch.manual_seed(seed)
    print(f"profile: {prof.name}")
    print(f"device:  {device_name(dev)}, torch {torch.__version__}")
    print(f"dataset: {describe_source(dataset)}")
    return prof, dev
