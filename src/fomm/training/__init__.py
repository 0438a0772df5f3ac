"""Training: the original losses (``losses``), VGG19 for the perceptual loss (``vgg``), the
resumable / distributed training loop (``trainer``) and its visualisations (``visualize``).

>>> from fomm.training import train
>>> train("puppet-64", data="data/puppet64", out="runs/puppet64", max_steps=2000)
"""

from fomm.training.losses import DiscriminatorFullModel, GeneratorFullModel, Transform, detach_kp
from fomm.training.trainer import Trainer, TrainOptions, TrainResult, latest_checkpoint, list_checkpoints, train
from fomm.training.vgg import Vgg19, build_vgg19, load_vgg19_state, random_vgg19

__all__ = [
    "DiscriminatorFullModel",
    "GeneratorFullModel",
    "TrainOptions",
    "TrainResult",
    "Trainer",
    "Transform",
    "Vgg19",
    "build_vgg19",
    "detach_kp",
    "latest_checkpoint",
    "list_checkpoints",
    "load_vgg19_state",
    "random_vgg19",
    "train",
]
