"""ardiff: autoregression and diffusion, side by side.

The library behind the ardiff book. One concept per module:

- :mod:`ardiff.schedules`: noise schedules (:class:`NoiseSchedule`);
- :mod:`ardiff.forward`: the forward process (:func:`q_sample`, :func:`q_step`, :func:`q_posterior`);
- :mod:`ardiff.data`: MNIST, CIFAR-10 and natural photographs, checksum-verified;
- :mod:`ardiff.profiles`: the ``quick`` / ``full`` run profiles and the lessons' setup call;
- :mod:`ardiff.plot`, :mod:`ardiff.widgets`: figures and the schedule explorer (imported on demand);
- ``ardiff.show(obj)``: a library object's source on the page (:mod:`ardiff.source`, imported on first use).
"""
__version__ = "0.2.0"   # as in pyproject.toml (a test keeps them equal); lessons check it in their setup cell

from . import data, forward, profiles, schedules
from .forward import q_posterior, q_sample, q_step
from .schedules import NoiseSchedule

__all__ = ["NoiseSchedule", "q_sample", "q_step", "q_posterior", "data", "forward", "profiles", "schedules"]


def __getattr__(name):
    """``ardiff.show``: :func:`ardiff.source.show`, imported on first use."""
    if name == "show":
        from .source import show
        return show
    raise AttributeError(f"module 'ardiff' has no attribute {name!r}")
