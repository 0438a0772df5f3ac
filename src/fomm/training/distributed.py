"""Multi-process training helpers: process group setup (torchrun), synchronised BatchNorm, and
small collectives.

``torchrun --nproc_per_node=N -m fomm.cli train ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them and starts
the process group with NCCL on CUDA and gloo on the CPU.

BatchNorm becomes synchronised (statistics over the whole global batch, as the original's
``SynchronizedBatchNorm2d``): on CUDA with :class:`torch.nn.SyncBatchNorm`; on the CPU, where
PyTorch's SyncBatchNorm refuses CPU tensors, with :class:`CpuSyncBatchNorm2d` below, which
all-reduces per-channel sums with a differentiable all-reduce.
Both keep BatchNorm's state-dict keys, so checkpoints load into the plain model.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from fomm.errors import FommError


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_distributed(device_type: str) -> DistInfo:
    """Start the process group when launched by torchrun with more than one process."""
    world = env_world_size()
    if world <= 1:
        return DistInfo()
    if dist.is_initialized():
        return DistInfo(
            dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_backend()
        )
    if not dist.is_available():
        raise FommError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed; run a single process")
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if backend == "nccl":
        if local_rank >= torch.cuda.device_count():
            raise FommError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPU(s); use "
                f"--nproc_per_node <= the GPU count"
            )
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local_rank, backend)


def training_device(device: str, threads: int | None) -> tuple[DistInfo, torch.device]:
    """The process group (under torchrun) and the device of one training process: ``device``
    (``auto``: CUDA when there is one), this process's GPU under torchrun; on the CPU ``threads``
    (default: the cores shared evenly by this machine's processes)."""
    from fomm.models.checkpoint import resolve_device

    want = resolve_device(device) if device != "auto" or env_world_size() <= 1 else None
    if want is None:
        want = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if want.type not in ("cpu", "cuda") and env_world_size() > 1:
        raise FommError("distributed training supports cpu and cuda only; use --device cpu or cuda")
    info = init_distributed(want.type)
    if want.type == "cuda":
        want = torch.device("cuda", info.local_rank if info.enabled else (want.index or 0))
        torch.cuda.set_device(want)
        torch.backends.cudnn.benchmark = True
    if want.type == "cpu":
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", info.world_size))
        torch.set_num_threads(int(threads or max(1, (os.cpu_count() or 1) // max(1, local_world))))
    return info, want


def shutdown_distributed(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes; the gradient of a sum is the sum of the gradients (all-reduced too)."""

    @staticmethod
    def forward(ctx, tensor):
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class _CpuSyncNorm:
    """BatchNorm whose training statistics cover every process's batch (gloo, CPU tensors).

    Forward all-reduces ``[sum, sum of squares, count]`` per channel with an autograd-aware
    all-reduce, so gradients also flow through the global
    statistics, as in :class:`torch.nn.SyncBatchNorm`. Without a process group, or in eval mode,
    it is the plain BatchNorm.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        c, dtype = x.shape[1], x.dtype
        dims, shape = (0, *range(2, x.dim())), (1, c) + (1,) * (x.dim() - 2)
        # bf16/fp16 activations (autocast) are normalised in fp32, as BatchNorm's own kernel does: in
        # bf16 the sums, the count and E[x^2] - E[x]^2 would lose the variance
        x = x.float() if dtype in (torch.bfloat16, torch.float16) else x
        count = torch.full((1,), float(x.numel() // c), dtype=x.dtype, device=x.device)
        local = torch.cat([x.sum(dim=dims), (x * x).sum(dim=dims), count])
        total = _AllReduceSum.apply(local)
        n = total[-1]
        mean = total[:c] / n
        var = (total[c : 2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                momentum = 0.1 if self.momentum is None else self.momentum
                unbiased = var.detach() * (n.detach() / (n.detach() - 1).clamp_min(1))
                self.running_mean.mul_(1 - momentum).add_(mean.detach() * momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased * momentum)
                self.num_batches_tracked.add_(1)
        out = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(dtype)


class CpuSyncBatchNorm2d(_CpuSyncNorm, nn.BatchNorm2d):
    """:class:`torch.nn.BatchNorm2d` with statistics over every process's batch (see :class:`_CpuSyncNorm`)."""


class CpuSyncBatchNorm1d(_CpuSyncNorm, nn.BatchNorm1d):
    """:class:`torch.nn.BatchNorm1d` with statistics over every process's batch (TPSMM's AVD network)."""


def convert_sync_batchnorm(module: nn.Module, device_type: str) -> nn.Module:
    """Replace every BatchNorm2d (and BatchNorm1d) of ``module`` by its synchronised version (state kept)."""
    if device_type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_cpu(module)


def _convert_cpu(module: nn.Module) -> nn.Module:
    synced = {nn.BatchNorm2d: CpuSyncBatchNorm2d, nn.BatchNorm1d: CpuSyncBatchNorm1d}.get(type(module))
    if synced is not None:
        new = synced(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new.to(next(iter(module.state_dict().values())).device)
    for name, child in list(module.named_children()):
        setattr(module, name, _convert_cpu(child))
    return module


def all_true(flag: bool, info: DistInfo, device) -> bool:
    """True when ``flag`` holds on every process."""
    if not info.enabled:
        return bool(flag)
    t = torch.tensor([0.0 if flag else 1.0], device=device)
    dist.all_reduce(t)
    return bool(t.item() == 0)


def broadcast_object(obj, info: DistInfo):
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj, info: DistInfo) -> list:
    """Every process's ``obj``, in rank order (on every rank)."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def sum_tensor(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        t = t.clone()
        dist.all_reduce(t)
    return t


def broadcast_state(module: nn.Module, info: DistInfo) -> None:
    """Give every process the first process's parameters and buffers (what DDP does when it wraps a
    module): parts that start from random weights, e.g. one a checkpoint leaves out, then agree."""
    if not info.enabled:
        return
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def average_gradients(parameters, info: DistInfo) -> None:
    """Average the gradients of ``parameters`` over the processes, as DDP does after ``backward``,
    in one all-reduce (for models whose parts are called through other methods than ``forward``,
    which DDP does not see). Parameters without a gradient are skipped: every process runs the same
    code, so the same ones have none."""
    if not info.enabled:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= info.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view(g.shape))
        offset += g.numel()


class StopSignal:
    """Turns SIGTERM and Ctrl-C (SIGINT) into a request to stop after the current step (main thread
    only). A second Ctrl-C interrupts at once (KeyboardInterrupt). Under torchrun every process
    checks every step whether any process got a signal, so all stop together."""

    def __init__(self):
        self.name: str | None = None
        self.seen = False
        self._previous: dict = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handler)

    def _handler(self, signum, frame) -> None:
        self.name = self.name or signal.Signals(signum).name
        if signum == signal.SIGINT:  # the next Ctrl-C interrupts at once
            signal.signal(signal.SIGINT, self._previous.get(signal.SIGINT) or signal.default_int_handler)
            os.write(2, b"\nCtrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to stop now)\n")

    @property
    def interrupted(self) -> bool:
        """True when the stop came from Ctrl-C."""
        return self.name == "SIGINT"

    def check(self, info: DistInfo, device) -> bool:
        """True (on every process) once any process got a signal."""
        self.seen = self.seen or not all_true(self.name is None, info, device)
        if self.seen and self.name is None:
            self.name = "SIGTERM (another process)"
        return self.seen

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        self._previous = {}


__all__ = [
    "CpuSyncBatchNorm1d",
    "CpuSyncBatchNorm2d",
    "average_gradients",
    "broadcast_state",
    "DistInfo",
    "StopSignal",
    "all_true",
    "barrier",
    "broadcast_object",
    "convert_sync_batchnorm",
    "gather_objects",
    "init_distributed",
    "shutdown_distributed",
    "sum_tensor",
]
