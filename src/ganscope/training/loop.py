"""The one training loop, for every model, loss and dataset.

Per generator step: ``n_critic`` discriminator steps, each on the next real batch of the epoch
and a fresh z, then one generator step on another fresh z — the seeds' notebook order. What
varies between GAN flavours lives in the loss object (its D/G objectives, clipping, penalty) and
the model registry; this file never branches on their names.

Reproducibility: model init draws from the global torch RNG seeded with ``cfg.seed``; data order
and noise come from two dedicated generators whose states go into every checkpoint, so a resumed
run continues the exact random streams of an uninterrupted one (bit-identical on CPU).
"""

from __future__ import annotations

import functools
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm.auto import tqdm  # a widget in Jupyter (with ipywidgets), text elsewhere

from ganscope.config import RunConfig, TrainConfig
from ganscope.data import Dataset
from ganscope.domains import Domain, domain_for, domain_of_kind
from ganscope.domains.base import Scorer
from ganscope.environment import environment, native_bf16, now_iso
from ganscope.errors import ConfigError, TrainingInterrupted, UserError
from ganscope.io import atomic_save_npy, atomic_torch_save
from ganscope.losses import build_loss
from ganscope.metrics.labels import eval_line_parts, lower_is_better
from ganscope.models import has_conv
from ganscope.models.conditional import HEADED, LABELLED, CodedGenerator, aux_loss
from ganscope.optim import build_optimizer
from ganscope.sinks import SinkGroup, build_sinks
from ganscope.techniques.augment import AdaptiveP, Augment, parse_policy
from ganscope.techniques.ema import GeneratorEMA
from ganscope.techniques.penalties import gradient_penalty_r
from ganscope.training import distributed
from ganscope.training.denormals import denormals_flushed, flush_denormals
from ganscope.training.distributed import SINGLE, DistInfo
from ganscope.training.evaluation import check_evaluable, comparable, record_best, run_record
from ganscope.training.run import CHECKPOINT_FORMAT, EVENT_KEYS, Run, build_nets, load_checkpoint

FLUSH_EVERY = 200  # generator steps between event flushes (live curves), besides epoch ends
_clock = time.monotonic  # train.minutes' clock (tests replace it with one that counts steps)


def mps_available() -> bool:
    """Apple's Metal GPU (MPS): built into this torch and present on this machine."""
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str, info: DistInfo = SINGLE) -> torch.device:
    """cpu | cuda | mps | auto -> a torch.device; auto picks CUDA, then Apple's MPS, then the
    CPU. A distributed CUDA rank gets its own GPU; distributed ranks never use MPS (gloo cannot
    all-reduce its tensors), so auto gives them the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif not info.active and mps_available():
            name = "mps"
        else:
            name = "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "CUDA was asked for (--device cuda) but this torch build sees no GPU: "
            "use --device cpu, or install a CUDA build of torch"
        )
    if name == "mps":
        if not mps_available():
            raise ConfigError(
                "MPS was asked for (--device mps) but this torch build or machine has no MPS "
                "(Apple silicon, macOS 12.3+): use --device cpu, or --device auto"
            )
        if info.active:
            raise ConfigError("--device mps cannot be shared by torchrun processes: train on "
                              "MPS in one process, or use --device cpu under torchrun")
    return torch.device("cuda", info.local_rank) if name == "cuda" else torch.device(name)


def resolve_precision(name: str, device: torch.device) -> str:
    """``train.precision`` as it will run: ``auto`` is bf16 where the device multiplies bf16
    in hardware (``environment.native_bf16``), fp32 elsewhere; the others as they are."""
    if name != "auto":
        return name
    return "bf16" if native_bf16(device) else "fp32"


class Precision:
    """``train.precision``: autocast for the forward passes and, for fp16, one gradient scaler
    per optimiser (D and G losses have very different scales). Losses are always computed in
    fp32 from fp32-cast D outputs: BCE is not autocast-safe, and the logged numbers stay
    comparable across precisions. fp32 is a no-op, so CPU runs stay bit-identical."""

    def __init__(self, name: str, device: torch.device) -> None:
        self.dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name]
        self.device_type = device.type
        fp16 = name == "fp16"
        self.scaler_d = torch.amp.GradScaler(device.type, enabled=fp16)
        self.scaler_g = torch.amp.GradScaler(device.type, enabled=fp16)

    def autocast(self):
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    @staticmethod
    def step(loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler
             ) -> None:
        opt.zero_grad(set_to_none=True)
        if scaler.is_enabled():
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()


def _set_threads(tc, info: DistInfo, device: torch.device) -> int:
    """train.threads, else (several CPU ranks on one machine) the cores divided among them."""
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    elif info.active and device.type == "cpu":
        torch.set_num_threads(distributed.threads_per_rank(info))
    return torch.get_num_threads()


def count_steps_per_epoch(n: int, tc: TrainConfig) -> int:
    """Generator steps in an epoch of ``n`` samples: ``n_critic`` batches each (a last short
    batch counts unless ``drop_last``). ConfigError when not even one step fits."""
    bs = tc.batch_size
    n_batches = n // bs if tc.drop_last else math.ceil(n / bs)
    steps = n_batches // tc.n_critic
    if steps < 1:
        raise ConfigError(
            f"bad config: {n} samples make {n_batches} batches of {bs}, fewer than "
            f"train.n_critic={tc.n_critic}; use more data or a smaller train.batch_size"
        )
    return steps


@dataclass
class StepView:
    """What ``on_step`` sees after a generator step: the live nets and that step's numbers."""

    step: int
    epoch: int
    G: nn.Module
    D: nn.Module
    loss_d: float
    loss_g: float
    d_x: float
    d_g_z: float


class StopFlag:
    """First Ctrl-C asks the loop to stop at the next step boundary; a second one aborts.

    Stopping only between steps keeps weights and optimiser state consistent for the checkpoint.
    """

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping: saving a checkpoint (Ctrl-C again to abort at once)", file=sys.stderr)

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def start_meta(cfg: RunConfig, device: torch.device, steps_per_epoch: int, data: Dataset,
               sigmoid: bool, execution: dict[str, Any], resume: bool) -> dict[str, Any]:
    """meta.json's fields at the start (or resumption) of a training session: one schema for
    the solo loop and the stacked one."""
    meta = {
        "status": "running", "pid": os.getpid(), "host": os.uname().nodename,
        "seed": cfg.seed, "preset": cfg.preset, "device": str(device),
        "epochs_planned": cfg.train.epochs, "steps_per_epoch": steps_per_epoch,
        "environment": environment(), "data": data.source, "stopped_early": None,
        "d_output": "probability" if sigmoid else "raw critic score",
        "execution": execution, "resumed_at": now_iso() if resume else None,
    }
    if not resume:
        meta["start_time"] = now_iso()
        meta["epochs_done"] = 0
    return meta


def checkpoint_record(cfg: RunConfig, *, epoch: int, it: int, step: int, seconds: float,
                      state: dict[str, Any], data_state: torch.Tensor,
                      noise_state: torch.Tensor) -> dict[str, Any]:
    """last.pt's contents: ``state`` holds G, D, opt_g, opt_d and, where used, G_ema,
    aug_state and ada. One format for the solo loop and the stacked one, so any run resumes
    in either."""
    return {"format": CHECKPOINT_FORMAT, "epoch": epoch, "iter": it, "step": step,
            "train_seconds": seconds, **state, "data_state": data_state,
            "noise_state": noise_state, "model": cfg.model.name, "z_dim": cfg.model.z_dim}


def _set_requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(flag)


def train(run: Run, *, dataset: Dataset | None = None, resume: bool = False,
          progress: bool = True, should_stop: Callable[[int], bool] | None = None,
          verbose: bool = True,
          on_step: Callable[[StepView], None] | None = None,
          dist_info: DistInfo | None = None) -> Run:
    """Train the run under its training lock (one writer per run; see ``Run.training_lock``):
    a second trainer of the same run gets a RunError before it reads or writes anything.
    Arguments as in ``_train``; under torchrun only rank 0 writes, so only rank 0 locks."""
    info = dist_info or SINGLE
    with run.training_lock() if info.main else nullcontext(), \
            flush_denormals(run.config().train.flush_denormals):
        return _train(run, dataset=dataset, resume=resume, progress=progress,
                      should_stop=should_stop, verbose=verbose, on_step=on_step, dist_info=info)


def _train(run: Run, *, dataset: Dataset | None, resume: bool, progress: bool,
           should_stop: Callable[[int], bool] | None, verbose: bool,
           on_step: Callable[[StepView], None] | None, dist_info: DistInfo) -> Run:
    """Train the run described by ``run/config.yaml``; resume from its last checkpoint if asked.

    ``should_stop(step)`` lets callers (tests, schedulers) interrupt exactly as Ctrl-C does;
    ``verbose=False`` silences the per-evaluation lines (workers of a sweep);
    ``on_step(view)`` runs after every generator step in the training thread (the live 2-D lab
    draws from it and pauses by blocking in it); it must not change the nets.
    ``dist_info`` (from ``distributed.setup()``) makes this one rank of a data-parallel run: it
    trains on its slice of every global batch, and only rank 0 writes the run directory.
    """
    cfg: RunConfig = run.config().validate()
    tc = cfg.train
    info = dist_info or SINGLE
    device = resolve_device(tc.device, info)
    threads = _set_threads(tc, info, device)
    # What the data is (its sample figure, its scorer) is the domain's to say; a caller's own
    # data set of another kind (a test's points under an image name) brings its kind's domain.
    domain = domain_for(cfg.data.name)
    if dataset is not None and dataset.kind != domain.kind:
        domain = domain_of_kind(dataset.kind)
    evaluator = (_Evaluator(run, cfg, domain, verbose)
                 if cfg.eval.every > 0 and info.main else None)
    data = dataset if dataset is not None else domain.load(cfg.data, cfg.seed)
    x_all = data.training_tensor(device)
    if evaluator is not None:
        evaluator.score = domain.scorer(cfg, data)
    n, bs = x_all.shape[0], tc.batch_size
    steps_per_epoch = count_steps_per_epoch(n, tc)

    loss = build_loss(cfg.loss)
    torch.manual_seed(cfg.seed)
    G, D = build_nets(run, cfg, loss.sigmoid)  # registered nets, or the user's (RUN/model/)
    G.to(device)
    D.to(device)
    nhwc = tc.channels_last and (has_conv(G) or has_conv(D))
    if nhwc:
        # NHWC lets cuDNN/oneDNN pick their fastest conv kernels; same math, other layout.
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
        if x_all.dim() == 4 and not data.mapped:  # a mapped set: each batch, below
            x_all = x_all.contiguous(memory_format=torch.channels_last)
    precision = resolve_precision(tc.precision, device)
    amp = Precision(precision, device)
    tech = cfg.tech
    # G's moving average: what sampling, evaluation and every reader of the run use
    ema = (GeneratorEMA(G, tech.ema, tech.ema_start, z_dim=cfg.model.z_dim,
                        batch_size=tc.batch_size, seed=cfg.seed + 4)
           if tech.ema > 0 else None)
    policy = parse_policy(tech.augment)
    augment = Augment(policy, tech.augment_p) if policy else None
    ada = (AdaptiveP(tech.ada_target, tech.ada_interval, tech.ada_speed, p=tech.augment_p)
           if tech.ada_target > 0 else None)
    # its own stream, so switching augmentation on leaves the data order and latents unchanged
    aug_gen = torch.Generator().manual_seed(cfg.seed + 3)
    ada_threshold = 0.5 if loss.sigmoid else 0.0  # sign(D's logit) when D gives probabilities
    # conditional models and InfoGAN (ganscope.models.conditional): G reads its class and codes
    # off z, so the fake batch's labels come from z; the real batch's from the data
    mode = cfg.model.conditional
    coded = G if isinstance(G, CodedGenerator) else None
    project = mode == "projection"  # D takes the labels; acgan/infogan: D's head predicts them
    y_all = _labels(data, cfg, device) if mode in LABELLED else None
    aux_w, K = cfg.loss.aux_weight, cfg.model.n_classes

    def judge(net, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return net(x, y) if project else net(x)

    def bound(y: torch.Tensor | None):
        """D with this batch's labels, for the penalties that call D on their own inputs."""
        return functools.partial(D, y=y) if project else D
    # Without BatchNorm, D treats each sample independently, so scoring real and fake in one
    # batch is the same function; with it, batch statistics would mix the two, as the seeds
    # never did, so BN nets keep two forwards.
    joint_d = not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
    opt_g = build_optimizer(G.parameters(), cfg.optim.resolved("g"))
    opt_d = build_optimizer(D.parameters(), cfg.optim.resolved("d"))
    data_gen = torch.Generator().manual_seed(cfg.seed + 1)
    # Latents are drawn on the CPU and copied to the device: a CUDA run follows the very random
    # streams of a CPU run of the same config (they agree to float rounding), at the price of
    # a copy of B x z_dim floats per step.
    noise_gen = torch.Generator().manual_seed(cfg.seed + 2)
    fixed_z = torch.randn(tc.n_samples, cfg.model.z_dim,
                          generator=torch.Generator().manual_seed(cfg.seed))

    start_epoch, start_k, step = 0, 0, 0
    spent_before = 0.0  # training seconds of earlier sessions of this run (train.minutes)
    if resume and not run.last_checkpoint.is_file():
        # Killed before its first checkpoint: nothing to continue, so the run starts over (its
        # few logged events go too) and ends as the uninterrupted run would have.
        resume = False
        if info.main:
            run.truncate_events(0)
    if resume:
        ck = load_checkpoint(run.last_checkpoint)
        G.load_state_dict(ck["G"])
        D.load_state_dict(ck["D"])
        opt_g.load_state_dict(ck["opt_g"])
        opt_d.load_state_dict(ck["opt_d"])
        data_gen.set_state(ck["data_state"])
        noise_gen.set_state(ck["noise_state"].cpu())
        if ema is not None:
            ema.load_state_dict(ck["G_ema"])
        if "aug_state" in ck:
            aug_gen.set_state(ck["aug_state"])
        if ada is not None:
            ada.load_state_dict(ck["ada"])
        start_epoch, start_k, step = ck["epoch"], ck["iter"], ck["step"]
        spent_before = float(ck.get("train_seconds", 0.0))
        if info.main:
            run.truncate_events(step)
        if start_epoch >= tc.epochs:
            return run  # nothing left; `--set train.epochs=N` extends a finished run
        if tc.minutes and spent_before >= 60 * tc.minutes:
            return run  # its time is spent; `--set train.minutes=M` extends it
    elif info.main:
        atomic_save_npy(run.fixed_z_path, fixed_z.numpy())

    # The nets the steps call. The plain modules own the weights (checkpoints, sampling, the
    # gradient penalty, clipping); DDP wraps them for the passes whose gradients are averaged
    # across ranks, and torch.compile wraps that. The G step calls D's plain module: D is not
    # updated there, so its gradients must not enter DDP's reducer.
    g_step, d_step, g_fake, d_judge = G, D, G, D
    if info.active:
        ids = [device.index] if device.type == "cuda" else None
        g_step, d_step = DDP(G, device_ids=ids), DDP(D, device_ids=ids)
    if tc.compile:
        g_step, d_step = torch.compile(g_step), torch.compile(d_step)
        g_fake, d_judge = torch.compile(G), torch.compile(D)

    if info.main:
        run.update_meta(**start_meta(
            cfg, device, steps_per_epoch, data, loss.sigmoid, resume=resume, execution={
                "threads": threads, "precision": precision, "precision_asked": tc.precision,
                "compile": tc.compile, "channels_last": tc.channels_last,
                "flush_denormals": denormals_flushed(), "world_size": info.world,
                "backend": torch.distributed.get_backend() if info.active else None}))

    fixed_z = fixed_z.to(device)
    total = tc.epochs * steps_per_epoch
    bar = _progress_bar(total, start_epoch * steps_per_epoch + start_k, progress and info.main)
    stats = torch.zeros(steps_per_epoch, 4, device=device)
    data_state = data_gen.get_state()

    t_start = _clock()

    def spent() -> float:
        """Training seconds so far, earlier sessions of a resumed run included."""
        return spent_before + _clock() - t_start

    def out_of_time() -> bool:
        """train.minutes is spent (on any rank: all stop at the same step)."""
        return bool(tc.minutes) and distributed.any_rank(spent() >= 60 * tc.minutes, info,
                                                         device)

    def checkpoint(epoch_idx: int, k: int, epoch_start_state: torch.Tensor) -> None:
        if not info.main:
            return
        state = {"G": G.state_dict(), "D": D.state_dict(), "opt_g": opt_g.state_dict(),
                 "opt_d": opt_d.state_dict(),
                 **({"G_ema": ema.state_dict()} if ema is not None else {}),
                 **({"aug_state": aug_gen.get_state()} if augment is not None else {}),
                 **({"ada": ada.state_dict()} if ada is not None else {})}
        atomic_torch_save(checkpoint_record(
            cfg, epoch=epoch_idx, it=k, step=step, seconds=spent(), state=state,
            data_state=epoch_start_state, noise_state=noise_gen.get_state()),
            run.last_checkpoint)

    flushed = start_k
    last_row: list[float] = []

    def flush(epoch: int, upto: int) -> None:
        """Write steps flushed..upto to events.jsonl: the only sync with the host besides the
        progress bar. Every rank calls it at the same steps (it averages over ranks)."""
        nonlocal flushed, last_row
        if upto <= flushed:
            return
        vals = distributed.mean_over_ranks(stats[flushed:upto], info).tolist()
        last_row = vals[-1]
        first = step - (upto - flushed) + 1
        if info.main:
            rows = [{"step": first + i, "epoch": epoch + 1, "it": flushed + i,
                     **dict(zip(EVENT_KEYS, v))} for i, v in enumerate(vals)]
            run.append_events(rows)
            sinks.events(rows, EVENT_KEYS)  # the same rows, to TensorBoard / W&B (--log)
        flushed = upto

    sinks = SinkGroup()
    ok = False
    try:
        if info.main and cfg.log.sinks:  # before StopFlag: a sink's own handlers go under it
            sinks = SinkGroup(build_sinks(cfg.log.sinks, run, cfg, start_step=step))
            if evaluator is not None:
                evaluator.sinks = sinks
        with StopFlag() as stop:
            for epoch in range(start_epoch, tc.epochs):
                data_state = data_gen.get_state()
                perm = (torch.randperm(n, generator=data_gen) if tc.shuffle
                        else torch.arange(n)).to(device)
                k0 = start_k if epoch == start_epoch else 0
                flushed = k0
                done_k = steps_per_epoch  # steps of this epoch trained (fewer: out of time)
                for k in range(k0, steps_per_epoch):
                    stopping = stop.requested or (should_stop is not None and should_stop(step))
                    if distributed.any_rank(stopping, info, device):
                        flush(epoch, k)
                        checkpoint(epoch, k, data_state)
                        if info.main:
                            run.update_meta(status="interrupted", step=step, end_time=now_iso())
                        raise TrainingInterrupted(str(run.path))
                    # --- discriminator: n_critic steps on consecutive real batches ---
                    for c in range(tc.n_critic):
                        b = (k * tc.n_critic + c) * bs
                        rows = perm[b:b + bs]
                        n_global = rows.numel()
                        # Latents for the whole global batch, then this rank's slice: every
                        # rank's noise stream stays that of a single-process run.
                        z = torch.randn(n_global, cfg.model.z_dim,
                                        generator=noise_gen).to(device, non_blocking=True)
                        if info.active:
                            mine = info.shard(rows.numel())
                            rows, z = rows[mine], z[mine]
                        real = data.batch(x_all, rows, device)
                        if data.mapped and nhwc and real.dim() == 4:
                            real = real.contiguous(memory_format=torch.channels_last)
                        y_real = y_all.index_select(0, rows) if y_all is not None else None
                        y_fake, c_fake = coded.codes(z) if coded is not None else (None, None)
                        with torch.no_grad(), amp.autocast():
                            fake = g_fake(z)
                        if augment is not None:  # D only ever sees augmented images
                            if ada is not None:
                                augment.p = ada.p
                            real, fake = augment.pair(real, fake.to(real.dtype), aug_gen,
                                                      same=tech.augment_same)
                        aux_real = aux_fake = None
                        with amp.autocast():
                            if joint_d:  # one forward (and backward) of 2B rows, not two of B
                                y_both = (torch.cat([y_real, y_fake]) if project else None)
                                d_out = judge(d_step, torch.cat([real, fake.to(real.dtype)]),
                                              y_both)
                                d_real, d_fake = d_out.float().split(real.size(0))
                                if coded is not None and not project:
                                    aux_real, aux_fake = D.aux_out.split(real.size(0))
                            else:
                                d_real = judge(d_step, real, y_real).float()
                                aux_real = getattr(D, "aux_out", None)
                                d_fake = judge(d_step, fake, y_fake).float()
                                aux_fake = getattr(D, "aux_out", None)
                        loss_d = loss.d_loss(d_real, d_fake, real=real, fake=fake.float(),
                                             D=bound(y_real), generator=noise_gen)
                        if mode == "acgan":  # D's head classifies reals and fakes
                            loss_d = loss_d + aux_w * (aux_loss(aux_real, y_real, None, K)
                                                       + aux_loss(aux_fake, y_fake, None, K))
                        elif mode == "infogan":  # the head recovers the fakes' codes (Q)
                            loss_d = loss_d + aux_w * aux_loss(aux_fake, y_fake, c_fake, K)
                        reg = gradient_penalty_r(bound(y_real), real, fake, r1=tech.r1,
                                                 r2=tech.r2, every=tech.reg_every,
                                                 d_step=step * tc.n_critic + c,
                                                 D_fake=bound(y_fake))
                        if reg is not None:
                            loss_d = loss_d + reg
                        if ada is not None:  # D's overfitting signal: how sure it is of reals
                            ada.observe(torch.sign(d_real.detach() - ada_threshold),
                                        real.size(0))
                        amp.step(loss_d, opt_d, amp.scaler_d)
                        loss.after_d_step(D)
                    # --- generator: one step on a fresh z; D's weights need no gradients ---
                    z = torch.randn(n_global, cfg.model.z_dim,
                                    generator=noise_gen).to(device, non_blocking=True)
                    if info.active:
                        z = z[info.shard(n_global)]
                    _set_requires_grad(D, False)
                    y_g, c_g = coded.codes(z) if coded is not None else (None, None)
                    with amp.autocast():
                        g_z = g_step(z)
                        if augment is not None:  # G is judged through the same augmentation
                            g_z = augment(g_z, aug_gen)
                        d_gz = judge(d_judge, g_z, y_g)
                    loss_g = loss.g_loss(d_gz.float())
                    if mode in HEADED:  # G makes its class (codes) recognisable
                        loss_g = loss_g + aux_w * aux_loss(
                            D.aux_out, y_g, c_g if mode == "infogan" else None, K)
                    amp.step(loss_g, opt_g, amp.scaler_g)
                    _set_requires_grad(D, True)
                    step += 1
                    if ema is not None:
                        ema.update(G, step)
                    stats[k] = torch.stack([loss_d.detach(), loss_g.detach(),
                                            d_real.detach().mean(), d_fake.detach().mean()])
                    if (k + 1) % FLUSH_EVERY == 0:
                        flush(epoch, k + 1)
                    if on_step is not None:  # one sync per step, paid only by live viewers
                        # the average as it is after this step (BatchNorm statistics copied
                        # from G, not standing: those cost forwards, and the live lab's 2-D
                        # nets have no BatchNorm)
                        on_step(StepView(step, epoch + 1, ema.G if ema is not None else G, D,
                                         *stats[k].tolist()))
                    if bar is not None and (k % 20 == 19 or k == steps_per_epoch - 1):
                        ld, lg = stats[k, :2].tolist()
                        bar.set_postfix_str(
                            f"epoch {epoch + 1}/{tc.epochs} it {k + 1}/{steps_per_epoch} "
                            f"D {ld:.3f} G {lg:.3f}", refresh=False)
                        bar.update(epoch * steps_per_epoch + k + 1 - bar.n)
                    if k + 1 < steps_per_epoch and out_of_time():
                        done_k = k + 1  # a part epoch: it ends as a whole one would, below
                        break
                flush(epoch, done_k)
                timed_out = done_k < steps_per_epoch or (epoch + 1 < tc.epochs
                                                         and out_of_time())
                if info.main:
                    grid = _end_of_epoch(run, cfg, epoch, G, fixed_z, D, data, loss.sigmoid,
                                          domain, ema, last=timed_out)
                    if grid is not None:
                        sinks.image_file(step, "samples", grid, f"epoch {epoch + 1}")
                if done_k < steps_per_epoch:  # resumable where it stopped (--set train.minutes)
                    checkpoint(epoch, done_k, data_state)
                else:
                    checkpoint(epoch + 1, 0, data_gen.get_state())
                if evaluator is not None and (evaluator.due(epoch + 1) or timed_out):
                    evaluator(epoch + 1, ema.generator() if ema is not None else G, bar, step)
                if timed_out:
                    if info.main:
                        run.update_meta(epochs_done=epoch + done_k / steps_per_epoch, step=step,
                                        last=dict(zip(EVENT_KEYS, last_row)),
                                        stopped_early={"reason": "time", "epoch": epoch + 1,
                                                       "step": step, "minutes": tc.minutes},
                                        **({"ada": {"p": ada.p, "r_t": ada.r_t}} if ada else {}))
                    break
                plateau = evaluator is not None and evaluator.plateaued
                if distributed.any_rank(plateau, info, device):  # eval.patience ran out
                    if info.main:
                        run.update_meta(epochs_done=epoch + 1, step=step,
                                        last=dict(zip(EVENT_KEYS, last_row)),
                                        stopped_early={"reason": "plateau", "epoch": epoch + 1,
                                                       "step": step,
                                                       "patience": cfg.eval.patience})
                    break
                if info.main:
                    run.update_meta(epochs_done=epoch + 1, step=step,
                                    last=dict(zip(EVENT_KEYS, last_row)),
                                    **({"ada": {"p": ada.p, "r_t": ada.r_t}} if ada else {}))
                start_k = 0
        ok = True
    except TrainingInterrupted:
        ok = True  # a clean stop: the dashboards continue on --resume
        raise
    except BaseException as e:
        if info.main:
            # the disk that failed the run may refuse this too; the first error counts
            with suppress(OSError, UserError):
                run.update_meta(status="failed", error=f"{type(e).__name__}: {e}"[:300],
                                end_time=now_iso())
        raise
    finally:
        if bar is not None:
            bar.close()
        sinks.close(failed=not ok)
    if info.main:
        run.update_meta(status="completed", end_time=now_iso())
    return run


def _labels(data: Dataset, cfg: RunConfig, device: torch.device) -> torch.Tensor:
    """The data's class labels for a conditional model (long, on ``device``), or a UserError
    saying what is missing."""
    mode, k = cfg.model.conditional, cfg.model.n_classes
    if data.labels is None:
        raise UserError(f"model.conditional={mode} trains on class labels and {cfg.data.name} "
                        "has none here: use labelled data (image folders: one sub-folder per "
                        "class), or model.conditional=infogan, which needs none")
    y = data.labels.to(device=device, dtype=torch.long)
    top = int(y.max()) + 1 if y.numel() else 0
    if top > k or int(y.min()) < 0:
        raise UserError(f"{cfg.data.name} has {top} classes but model.n_classes={k}: set "
                        f"model.n_classes={top}")
    return y


def _end_of_epoch(run: Run, cfg: RunConfig, epoch: int, G: nn.Module, fixed_z: torch.Tensor,
                  D: nn.Module, data: Dataset, probability: bool, domain: Domain,
                  ema: GeneratorEMA | None = None, last: bool = False) -> Path | None:
    """Write the epoch's sample figure (when due or ``last``, from the EMA generator when there
    is one) and generator(s); return the figure's path."""
    tc = cfg.train
    grid = None
    if (epoch + 1) % tc.sample_every == 0 or epoch + 1 == tc.epochs or last:
        grid = run.sample_grid(epoch + 1)
        domain.save_samples(grid, ema.generator() if ema is not None else G, fixed_z, D=D,
                            data=data, probability=probability,
                            title=f"{run.name}: epoch {epoch + 1}")
    if tc.save_generators:
        atomic_torch_save({"format": CHECKPOINT_FORMAT, "G": G.state_dict(), "epoch": epoch + 1,
                           "model": cfg.model.name, "z_dim": cfg.model.z_dim,
                           **({"G_ema": ema.state_dict()} if ema is not None else {})},
                          run.generator_checkpoint(epoch + 1))
    return grid


class _Evaluator:
    """``--eval-every``: score G with the domain's scorer (for images the same function as
    ``ganscope eval``), record the best.

    Generation uses its own seeded latents and G in eval mode, so evaluating leaves the training
    streams untouched: a run with evaluation trains the same weights as one without.
    """

    def __init__(self, run: Run, cfg: RunConfig, domain: Domain, verbose: bool = True) -> None:
        if not domain.trains_with_eval:
            check_evaluable(cfg, run.name)  # before any training, not after the first epoch
        self.run, self.cfg, self.verbose = run, cfg, verbose
        self.score: Scorer | None = None  # the domain's, once the data are loaded
        self.sinks = SinkGroup()  # --log: the metrics go to the dashboards too
        self.plateaued = False  # eval.patience: the latest evaluations stopped improving

    def due(self, epoch: int) -> bool:
        return epoch % self.cfg.eval.every == 0 or epoch == self.cfg.train.epochs

    def __call__(self, epoch: int, G: nn.Module, bar, step: int | None = None) -> None:
        ckpt = (self.run.generator_checkpoint(epoch) if self.cfg.train.save_generators
                else self.run.last_checkpoint)
        assert self.score is not None
        res = self.score(G)
        self.run.append_metrics([run_record(self.run, epoch, ckpt, res, source="train")])
        best = record_best(self.run)
        self.plateaued = plateau_reached(self.run.read_metrics(), self.cfg.eval)
        m = res["metrics"]
        if step is not None:
            self.sinks.metrics(step, m)
        line = (f"eval epoch {epoch}: " + ", ".join(eval_line_parts(m))
                + f" ({res['seconds']:.1f} s)")
        if best is not None and best["epoch"] == epoch:
            line += " - best so far"
        if self.plateaued:
            line += (f" - plateau: stopping ({self.cfg.eval.patience} evaluations without "
                     "improvement)")
        if not self.verbose:
            return
        if bar is not None:
            bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)


def plateau_reached(records: list[dict[str, Any]], ec) -> bool:
    """``eval.patience``: True when none of the last ``patience`` evaluations improved on the
    best value before them of any watched metric (``eval.plateau``, else every metric with a
    better direction) by more than ``min_delta`` x |that best|.

    Why a plateau and not a fixed length: methods converge at very different speeds (WGAN with
    clipping needs many times the steps of WGAN-GP), so a fixed length compares a finished run
    with an unfinished one. Records are taken in epoch order, only those comparable with the
    latest (same reference and sample sizes); a metric that is missing or not finite in a record
    is skipped there, so a diverged run (all NaN) stops after ``patience`` evaluations.
    """
    if ec.patience <= 0 or not records:
        return False
    recs = sorted((r for r in records if comparable(r, records[-1])), key=lambda r: r["epoch"])
    if len(recs) <= ec.patience:
        return False
    keys = ec.plateau_names() or [
        k for k, v in recs[-1]["metrics"].items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
        and lower_is_better(k) is not None]

    def value(r: dict[str, Any], k: str) -> float | None:
        v = r["metrics"].get(k)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        return float(v) if ok else None

    start = len(recs) - ec.patience  # the window: the last `patience` evaluations

    def improved(i: int) -> bool:
        for k in keys:
            lower = lower_is_better(k) is not False  # a metric of no direction: lower
            # against the best BEFORE the window: a steady creep of small gains, each under
            # the margin, adds up to a real one over the window and keeps the run going
            prev = [v for r in recs[:start] if (v := value(r, k)) is not None]
            v = value(recs[i], k)
            if v is None:
                continue
            if not prev:
                return True
            best = min(prev) if lower else max(prev)
            margin = ec.min_delta * abs(best)
            if (v < best - margin) if lower else (v > best + margin):
                return True
        return False

    return not any(improved(i) for i in range(start, len(recs)))


def _progress_bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return None

    # a terminal, or Jupyter's widget (tqdm.auto): redraw often; a log file: rarely
    interactive = sys.stderr.isatty() or any(c.__module__ == "tqdm.notebook"
                                             for c in tqdm.__mro__)
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=True,
                mininterval=0.2 if interactive else 15.0, file=sys.stderr)
