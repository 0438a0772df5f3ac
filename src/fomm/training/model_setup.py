"""What ``fomm train`` trains: the model checked against the frame size, its optional start from
another checkpoint (``--init-from``), the VGG19 of the perceptual loss, the loss models (with
synchronised BatchNorm, DDP and ``torch.compile`` as asked) and the optimizers of ``train.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from fomm.config import Config, validate_config
from fomm.errors import FommError
from fomm.models.checkpoint import model_states, read_checkpoint
from fomm.models.first_order_model import FirstOrderModel
from fomm.training import distributed as D
from fomm.training.generator_init import freeze_norms, generator_norms, identity_init
from fomm.training.losses import DiscriminatorFullModel, GeneratorFullModel
from fomm.training.vgg import build_vgg19

PARTS = ("kp_detector", "generator", "discriminator")


def check_model_config(cfg: Config) -> None:
    """Stop with a :class:`FommError` when the networks do not fit ``frame_shape`` (the config
    schema check, :func:`fomm.config.validate_config`, covers types, ranges, choices, the
    hourglass sizes and the image pyramid against VGG-19; this adds the discriminator)."""
    validate_config(cfg, f"config {cfg.name}" if cfg.name else "config")
    tp = cfg.train_params
    h, w = cfg.frame_shape
    if tp.loss_weights.generator_gan != 0:
        dp = cfg.model_params.discriminator_params
        for scale in dp.scales:
            size = int(min(h, w) * scale)
            for i in range(dp.num_blocks):
                size -= 3
                if size >= 1 and i != dp.num_blocks - 1:
                    size //= 2
            if size < 1:
                raise FommError(
                    f"the discriminator ({dp.num_blocks} blocks of 4x4 convs and poolings) does not "
                    f"fit {w}x{h} frames at scale {scale}; lower discriminator_params.num_blocks or "
                    f"drop that scale"
                )


def build_model(cfg: Config, device: torch.device) -> FirstOrderModel:
    """The model with its discriminator, on ``device``, started as ``train_params.generator_init`` says."""
    check_model_config(cfg)
    tp = cfg.train_params
    model = FirstOrderModel(cfg, with_discriminator=True).to(device)
    if tp.generator_init == "identity":
        identity_init(model.generator)
    return model


def init_from(model: FirstOrderModel, path: Path) -> dict:
    """Copy every tensor of checkpoint ``path`` whose name and shape match into ``model``; returns
    a report per part (tensors loaded, kept new, unused)."""
    if not path.is_file():
        raise FommError(f"--init-from: checkpoint not found: {path}")
    states = model_states(read_checkpoint(path), path)
    report = {"checkpoint": str(path)}
    for part in PARTS:
        own = getattr(model, part).state_dict()
        given = states.get(part) or {}
        take = {k: v for k, v in given.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
        if take:
            getattr(model, part).load_state_dict({**own, **{k: v.to(own[k].dtype) for k, v in take.items()}})
        report[part] = {
            "loaded": len(take),
            "of": len(own),
            "kept_new": sorted(set(own) - set(take)),
            "unused": sorted(set(given) - set(take)),
        }
    if not report["generator"]["loaded"] and not report["kp_detector"]["loaded"]:
        raise FommError(
            f"--init-from: no tensor of {path} fits this model; check that it is a FOMM checkpoint of the same family"
        )
    return report


def perceptual_vgg(cfg: Config, weights: str | None, device, say: Callable[[str], None]):
    """The VGG19 of the perceptual loss (None when its weights are all 0) and its status for run.json."""
    tp = cfg.train_params
    if sum(tp.loss_weights.perceptual) == 0:
        return None, {"pretrained": False, "source": "not used (perceptual weights are all 0)"}
    vgg, status = build_vgg19(weights, tp.extra.get("vgg19_weights"))
    if status["pretrained"]:
        say(f"perceptual loss: ImageNet VGG19 from {status['path']} ({status['found_via']})")
    else:
        say(
            "perceptual loss: NO VGG19 weights found -> using a fixed random-weight VGG19 substitute "
            "(seeded; weaker than ImageNet features). Provide torchvision's vgg19-*.pth with "
            "--vgg19-weights, train_params.vgg19_weights or FOMM_VGG19_WEIGHTS for the real loss."
        )
    return vgg.to(device), status


def loss_models(model: FirstOrderModel, cfg: Config, dist, device, *, vgg, transform_generator, compile: bool):
    """``(generator_full, discriminator_full or None, frozen_norms)`` for training ``model``.

    Under torchrun BatchNorm becomes synchronised and the parts are wrapped in DDP; ``compile``
    compiles the keypoint detector and generator. The model is put in training mode, with the
    generator's BatchNorm statistics frozen when ``train_params.generator_batchnorm`` is ``frozen``.
    """
    tp = cfg.train_params
    use_gan = tp.loss_weights.generator_gan != 0
    if dist.enabled:
        model.kp_detector = D.convert_sync_batchnorm(model.kp_detector, device.type)
        model.generator = D.convert_sync_batchnorm(model.generator, device.type)
    kp, gen, disc = model.kp_detector, model.generator, model.discriminator
    # found after the sync-BN conversion, which replaces the modules
    frozen = generator_norms(gen) if tp.generator_batchnorm == "frozen" else []
    model.train()
    freeze_norms(frozen)
    if dist.enabled:
        ids = [device.index] if device.type == "cuda" else None
        kp = DDP(kp, device_ids=ids)
        gen = DDP(gen, device_ids=ids)
        disc = DDP(disc, device_ids=ids) if use_gan else disc
    if compile:
        # The discriminator stays eager: a spectral-norm power iteration updates its buffers between
        # its two calls in one step, which a compiled graph's saved tensors do not allow.
        kp, gen = torch.compile(kp), torch.compile(gen)
    gen_full = GeneratorFullModel(kp, gen, disc, tp, vgg=vgg, transform_generator=transform_generator)
    gen_full.pyramid.to(device)
    disc_full = DiscriminatorFullModel(kp, gen, disc, tp).to(device) if use_gan else None
    return gen_full, disc_full, frozen


def optimizers(model: FirstOrderModel, cfg: Config) -> tuple[dict, dict]:
    """Adam (``betas=(0.5, 0.999)``) and ``MultiStepLR(epoch_milestones, 0.1)`` per part, as train.py.

    On the CPU and CUDA, Adam's fused kernel (one pass over all of a part's parameters, the same
    update up to float rounding): measured on a 2-core AMD EPYC, one thread, the three optimizer
    steps of vox-256 took 48 ms instead of 318 ms (about 4% of a training step; puppet-64: 4 ms
    instead of 13). A checkpoint resumed keeps the setting it was saved with.
    """
    tp, betas = cfg.train_params, (0.5, 0.999)
    device = next(model.generator.parameters()).device
    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}

    def adam(part, lr):
        return torch.optim.Adam(part.parameters(), lr=lr, betas=betas, **fused)

    opts = {
        "generator": adam(model.generator, tp.lr_generator),
        "discriminator": adam(model.discriminator, tp.lr_discriminator),
        "kp_detector": adam(model.kp_detector, tp.lr_kp_detector),
    }
    scheds = {k: torch.optim.lr_scheduler.MultiStepLR(o, list(tp.epoch_milestones), gamma=0.1) for k, o in opts.items()}
    return opts, scheds
