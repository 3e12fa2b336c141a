"""Many runs of one config (its seeds) trained in one process as one stacked model.

Why: the lab's real workloads are many small runs (E1 over seeds, E5's cells over seeds,
sweeps), and a small run spends its step on per-op overhead, not arithmetic. Stacked, run k's
weights are slice k of ``[K, ...]`` tensors (``StackedNet``), every op serves the K runs, and one
optimiser over the stacked weights steps each run as its own would (element-wise optimisers).

This is the one loop's step (``ganscope.training.loop``) with a run dimension in front, for the
set-ups it can express (``why_not_stackable`` names what it cannot; those runs train alone).
Everything else stays per run, as if it trained alone:
- its init (``torch.manual_seed(seed)`` then ``build_nets``), data order and noise (its own
  generators, drawn in the solo loop's order), so its weights follow its solo run's to float
  rounding (the kernels differ: batched matmuls);
- its run directory: config, meta (``execution.stacked`` says with how many), events, sample
  figures, evaluations, and checkpoints in the solo format, so any run resumes alone
  (``ganscope train --resume``) or again in a stack;
- its plateau rule: a run whose evaluations stop improving stops and leaves the stack.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ganscope.config import RunConfig
from ganscope.data import Dataset
from ganscope.domains import Domain, domain_for
from ganscope.environment import now_iso
from ganscope.errors import TrainingInterrupted, UserError
from ganscope.io import atomic_save_npy, atomic_torch_save
from ganscope.losses import GANLoss, build_loss
from ganscope.models import build_models
from ganscope.models.user import is_user_model
from ganscope.optim import build_optimizer, is_elementwise
from ganscope.techniques.ema import GeneratorEMA
from ganscope.training import loop
from ganscope.training.denormals import denormals_flushed, flush_denormals
from ganscope.training.loop import (
    FLUSH_EVERY,
    StopFlag,
    _end_of_epoch,
    _Evaluator,
    _progress_bar,
    _set_requires_grad,
    checkpoint_record,
    count_steps_per_epoch,
    resolve_device,
    resolve_precision,
    start_meta,
)
from ganscope.training.run import (
    EVENT_KEYS,
    Run,
    build_nets,
    load_checkpoint,
)
from ganscope.training.stacked_net import (
    StackedNet,
    stack_optimizer_states,
    unstack_optimizer_state,
)


class NotStackable(UserError):
    """Raised before anything is written: these runs cannot share a stack (train them alone)."""


def _has_batchnorm(cfg: RunConfig) -> bool:
    """Whether a registered model's nets hold BatchNorm (built on the meta device: no memory,
    no random draws). A user's nets are checked when built, in the stack."""
    if is_user_model(cfg.model.name):
        return False
    with torch.device("meta"):
        nets = build_models(cfg.model.name, cfg.model.z_dim, True, "default",
                            cfg.model.g_hidden, cfg.model.d_hidden)
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm)
               for net in nets for m in net.modules())


def why_not_stackable(cfg: RunConfig) -> str | None:
    """None when a run of this config can train in a stack; else what keeps it alone."""
    t, tech = cfg.train, cfg.tech
    reasons = [
        (t.minutes > 0, "a wall-clock budget (train.minutes) is per run"),
        (t.compile, "train.compile"),
        (t.precision not in ("fp32", "auto"), "mixed precision"),
        (tech.spectral_norm != "none", "spectral norm"),
        (tech.r1 > 0 or tech.r2 > 0, "R1/R2 penalties"),
        (bool(tech.augment), "augmentation"),
        (cfg.model.conditional != "none", "conditional models"),
        (bool(cfg.log.sinks), "dashboards (log.sinks)"),
        (not build_loss(cfg.loss).stackable, f"the {cfg.loss.name} loss"),
        (not all(is_elementwise(cfg.optim.resolved(n)["name"]) for n in ("g", "d")),
         "an optimiser that is not element-wise"),
        (_has_batchnorm(cfg), "BatchNorm (its statistics are per batch)"),
    ]
    why = [r for bad, r in reasons if bad]
    return ", ".join(why) or None


def stack_key(cfg: RunConfig) -> str:
    """Runs with equal keys compute the same thing but for their seed: they may share a stack."""
    d = cfg.to_dict()
    d.pop("seed")
    d["train"].pop("threads", None)  # how a run executes, not what it computes
    return json.dumps(d, sort_keys=True)


def group_stackable(paths: Sequence[str], configs: Sequence[RunConfig]) -> list[list[str]]:
    """Partition run dirs into stacks (equal ``stack_key``, stackable) and singletons, in the
    order given."""
    groups: dict[str, list[str]] = {}
    out: list[list[str]] = []
    for p, cfg in zip(paths, configs):
        if why_not_stackable(cfg) is None:
            groups.setdefault(stack_key(cfg), []).append(p)
        else:
            out.append([p])
    out.extend(groups.values())
    return out


@dataclass
class _Member:
    """One run of the stack: what the solo loop keeps per run, besides the weights."""

    run: Run
    cfg: RunConfig
    data: Dataset
    domain: Domain
    G: nn.Module  # solo modules: the init, then views synced from the stack for writing
    D: nn.Module
    ema: GeneratorEMA | None
    data_gen: torch.Generator
    noise_gen: torch.Generator
    fixed_z: torch.Tensor
    evaluator: _Evaluator | None
    state: dict[str, Any] = field(default_factory=dict)  # per-run weights/optimiser state
    spent_before: float = 0.0
    data_state: torch.Tensor | None = None
    perm: torch.Tensor | None = None
    last_row: list[float] = field(default_factory=list)


class _Stack:
    """The stacked nets and optimisers of the runs still training, built from per-run states
    (fresh, resumed or surviving a plateau stop: one path)."""

    def __init__(self, members: list[_Member], cfg: RunConfig, loss: GANLoss,
                 device: torch.device) -> None:
        m0 = members[0]
        # a user's forward might mix a batch's samples: only vmap keeps the runs apart there
        fast = not is_user_model(cfg.model.name)
        self.G = StackedNet(m0.G, [m.state["G"] for m in members], fast).to(device)
        self.D = StackedNet(m0.D, [m.state["D"] for m in members], fast).to(device)
        self.opt_g = build_optimizer(self.G.parameters(), cfg.optim.resolved("g"))
        self.opt_d = build_optimizer(self.D.parameters(), cfg.optim.resolved("d"))
        self.opt_g.load_state_dict(stack_optimizer_states([m.state["opt_g"] for m in members],
                                                          self.G.transposed_idx))
        self.opt_d.load_state_dict(stack_optimizer_states([m.state["opt_d"] for m in members],
                                                          self.D.transposed_idx))
        self.ema = None
        if m0.ema is not None:
            self.ema = GeneratorEMA(self.G, cfg.tech.ema, cfg.tech.ema_start)
            self.ema.G.load_state_dict(StackedNet(m0.G, [m.state["G_ema"] for m in members],
                                                  fast).state_dict())

    def split(self) -> list[dict[str, Any]]:
        """Each run's slice of everything, in the solo checkpoint's names and format."""
        opt_g, opt_d = self.opt_g.state_dict(), self.opt_d.state_dict()
        out = []
        for k in range(self.G.K):
            s = {"G": self.G.unstack(k), "D": self.D.unstack(k),
                 "opt_g": unstack_optimizer_state(opt_g, k, self.G.transposed_idx),
                 "opt_d": unstack_optimizer_state(opt_d, k, self.D.transposed_idx)}
            if self.ema is not None:
                s["G_ema"] = self.ema.G.unstack(k)
            out.append(s)
        return out


def train_stacked(runs: Sequence[Run], *, resume: bool = False, progress: bool = True,
                  verbose: bool = True, should_stop: Callable[[int], bool] | None = None
                  ) -> list[Run]:
    """Train ``runs`` (equal ``stack_key``, each stackable) as one stacked model, each under its
    training lock. With ``resume`` every run continues from its last checkpoint; they must all
    stand at the same step (a stack steps in lockstep). Arguments as ``loop.train``'s."""
    runs = list(runs)
    if not runs:
        return runs
    cfgs = [r.config().validate() for r in runs]
    keys = {stack_key(c) for c in cfgs}
    if len(keys) > 1:
        raise NotStackable("runs of a stack must share their config but for the seed: train "
                           "the others in another stack, or alone")
    why = why_not_stackable(cfgs[0])
    if why:
        raise NotStackable(f"{runs[0].name} cannot train in a stack ({why}): train it alone")
    with ExitStack() as locks:
        for r in runs:
            locks.enter_context(r.training_lock())
        locks.enter_context(flush_denormals(cfgs[0].train.flush_denormals))
        return _train_stacked(runs, cfgs, resume, progress, verbose, should_stop)


def _train_stacked(runs: list[Run], cfgs: list[RunConfig], resume: bool, progress: bool,
                   verbose: bool, should_stop: Callable[[int], bool] | None) -> list[Run]:
    cfg = cfgs[0]
    tc = cfg.train
    device = resolve_device(tc.device)
    if resolve_precision(tc.precision, device) != "fp32":  # auto is bf16 on this device
        raise NotStackable(f"{runs[0].name}: --precision {tc.precision} runs bf16 here; "
                           "mixed precision trains alone, not stacked")
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    threads = torch.get_num_threads()
    loss = build_loss(cfg.loss)
    members: list[_Member] = []
    shared_x: torch.Tensor | None = None
    xs: list[torch.Tensor] = []
    for run, c in zip(runs, cfgs):
        domain = domain_for(c.data.name)
        evaluator = _Evaluator(run, c, domain, verbose) if c.eval.every > 0 else None
        # one copy of a data set every seed shares (images); the 2-D sets are drawn per seed
        if members and not domain.seeded_data and c.data == members[0].cfg.data:
            data = members[0].data
        else:
            data = domain.load(c.data, c.seed)
        if data.mapped:
            raise NotStackable(f"{run.name}: a memory-mapped data set trains alone, not stacked")
        x = xs[0] if members and data is members[0].data else data.training_tensor(device)
        if evaluator is not None:
            evaluator.score = domain.scorer(c, data)
        torch.manual_seed(c.seed)  # the solo loop's init, draw for draw
        G, D = build_nets(run, c, loss.sigmoid)
        G.to(device)
        D.to(device)
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm)
               for net in (G, D) for m in net.modules()):
            raise NotStackable(f"{run.name}: nets with BatchNorm train alone, not stacked")
        ema = GeneratorEMA(G, c.tech.ema, c.tech.ema_start) if c.tech.ema > 0 else None
        m = _Member(run, c, data, domain, G, D, ema,
                    torch.Generator().manual_seed(c.seed + 1),
                    torch.Generator().manual_seed(c.seed + 2),
                    torch.randn(tc.n_samples, c.model.z_dim,
                                generator=torch.Generator().manual_seed(c.seed)), evaluator)
        opt_g = build_optimizer(G.parameters(), c.optim.resolved("g"))
        opt_d = build_optimizer(D.parameters(), c.optim.resolved("d"))
        m.state = {"G": G.state_dict(), "D": D.state_dict(), "opt_g": opt_g.state_dict(),
                   "opt_d": opt_d.state_dict(),
                   **({"G_ema": ema.state_dict()} if ema is not None else {})}
        members.append(m)
        xs.append(x)
    n = xs[0].shape[0]
    if any(x.shape != xs[0].shape for x in xs):
        raise NotStackable("runs of a stack must have data sets of one size: train them alone")
    # one tensor when every run trains on the same data; else one slice per run
    if all(x is xs[0] or torch.equal(x, xs[0]) for x in xs[1:]):
        shared_x = xs[0]
    x_stack = None if shared_x is not None else torch.stack(xs)
    del xs
    bs = tc.batch_size
    steps_per_epoch = count_steps_per_epoch(n, tc)

    start_epoch, start_k, step = 0, 0, 0
    have = [m.run.last_checkpoint.is_file() for m in members]
    if resume and any(have) and not all(have):
        raise NotStackable("some runs of this stack have a checkpoint and some have none: "
                           "resume each alone (ganscope train RUN --resume)")
    if resume and not any(have):
        resume = False  # killed before the first checkpoint: start over, as the solo loop
        for m in members:
            m.run.truncate_events(0)
    if resume:
        where = set()
        for m in members:
            ck = load_checkpoint(m.run.last_checkpoint)
            m.state = {k: ck[k] for k in ("G", "D", "opt_g", "opt_d", "G_ema") if k in ck}
            m.data_gen.set_state(ck["data_state"])
            m.noise_gen.set_state(ck["noise_state"].cpu())
            m.spent_before = float(ck.get("train_seconds", 0.0))
            where.add((ck["epoch"], ck["iter"], ck["step"]))
        if len(where) > 1:
            raise NotStackable("the runs of this stack stopped at different steps: resume each "
                               "alone (ganscope train RUN --resume)")
        start_epoch, start_k, step = where.pop()
        for m in members:
            m.run.truncate_events(step)
        if start_epoch >= tc.epochs:
            return runs
    else:
        for m in members:
            atomic_save_npy(m.run.fixed_z_path, m.fixed_z.numpy())

    alive = list(members)
    stack = _Stack(alive, cfg, loss, device)
    for m in members:
        m.run.update_meta(**start_meta(
            m.cfg, device, steps_per_epoch, m.data, loss.sigmoid, resume=resume, execution={
                "threads": threads, "precision": "fp32", "precision_asked": tc.precision,
                "compile": False, "channels_last": tc.channels_last,
                "flush_denormals": denormals_flushed(), "world_size": 1,
                "backend": None, "stacked": len(members)}))
        m.fixed_z = m.fixed_z.to(device)

    bar = _progress_bar(tc.epochs * steps_per_epoch, start_epoch * steps_per_epoch + start_k,
                        progress)
    stats = torch.zeros(steps_per_epoch, len(alive), 4, device=device)
    t_start = loop._clock()
    flushed = start_k

    def checkpoint(epoch_idx: int, k: int, final: bool) -> None:
        """Each run's last.pt, from its slice; its solo modules are synced too (for writing
        samples and evaluating)."""
        for m, state in zip(alive, stack.split()):
            m.state = state
            m.G.load_state_dict(state["G"])
            m.D.load_state_dict(state["D"])
            if m.ema is not None:
                m.ema.load_state_dict(state["G_ema"])
            atomic_torch_save(checkpoint_record(
                m.cfg, epoch=epoch_idx, it=k, step=step,
                seconds=m.spent_before + loop._clock() - t_start, state=state,
                data_state=m.data_gen.get_state() if final else m.data_state,
                noise_state=m.noise_gen.get_state()), m.run.last_checkpoint)

    def flush(epoch: int, upto: int) -> None:
        nonlocal flushed
        if upto <= flushed:
            return
        vals = stats[flushed:upto].tolist()  # [steps][run][4]
        first = step - (upto - flushed) + 1
        for i, m in enumerate(alive):
            rows = [{"step": first + j, "epoch": epoch + 1, "it": flushed + j,
                     **dict(zip(EVENT_KEYS, v[i]))} for j, v in enumerate(vals)]
            m.run.append_events(rows)
            m.last_row = vals[-1][i]
        flushed = upto

    try:
        with StopFlag() as stop:
            for epoch in range(start_epoch, tc.epochs):
                for m in alive:
                    m.data_state = m.data_gen.get_state()
                    m.perm = (torch.randperm(n, generator=m.data_gen) if tc.shuffle
                              else torch.arange(n)).to(device)
                perms = torch.stack([m.perm for m in alive])  # type: ignore[misc]
                K = len(alive)
                k0 = start_k if epoch == start_epoch else 0
                flushed = k0
                gens = [m.noise_gen for m in alive]
                z_dim = cfg.model.z_dim
                run_ix = torch.arange(K, device=device).unsqueeze(1)
                for k in range(k0, steps_per_epoch):
                    if stop.requested or (should_stop is not None and should_stop(step)):
                        flush(epoch, k)
                        checkpoint(epoch, k, final=False)
                        for m in alive:
                            m.run.update_meta(status="interrupted", step=step,
                                              end_time=now_iso())
                        raise TrainingInterrupted(", ".join(str(m.run.path) for m in alive))
                    # --- discriminator: n_critic steps on each run's next real batch ---
                    for c in range(tc.n_critic):
                        b = (k * tc.n_critic + c) * bs
                        rows = perms[:, b:b + bs]  # [K, B]
                        z = torch.stack([torch.randn(rows.size(1), z_dim, generator=g)
                                         for g in gens]).to(device)
                        real = (shared_x[rows] if shared_x is not None  # type: ignore[index]
                                else x_stack[run_ix, rows])  # type: ignore[index]
                        with torch.no_grad():
                            fake = stack.G(z)
                        # no BatchNorm in a stack: D scores real and fake in one forward
                        d_real, d_fake = stack.D(torch.cat([real, fake], 1)).split(
                            real.size(1), 1)
                        loss_d = loss.d_loss_runs(d_real, d_fake, real=real, fake=fake,
                                                  D=stack.D, generators=gens)
                        stack.opt_d.zero_grad(set_to_none=True)
                        loss_d.sum().backward()  # the sum: each run's own gradient
                        stack.opt_d.step()
                        loss.after_d_step(stack.D)
                    # --- generator: one step per run on a fresh z ---
                    z = torch.stack([torch.randn(rows.size(1), z_dim, generator=g)
                                     for g in gens]).to(device)
                    _set_requires_grad(stack.D, False)
                    loss_g = loss.g_loss_runs(stack.D(stack.G(z)))
                    stack.opt_g.zero_grad(set_to_none=True)
                    loss_g.sum().backward()
                    stack.opt_g.step()
                    _set_requires_grad(stack.D, True)
                    step += 1
                    if stack.ema is not None:
                        stack.ema.update(stack.G, step)
                    stats[k, :K] = torch.stack([
                        loss_d.detach(), loss_g.detach(),
                        d_real.detach().flatten(1).mean(1), d_fake.detach().flatten(1).mean(1)],
                        1)
                    if (k + 1) % FLUSH_EVERY == 0:
                        flush(epoch, k + 1)
                    if bar is not None and (k % 20 == 19 or k == steps_per_epoch - 1):
                        bar.set_postfix_str(f"{K} runs, epoch {epoch + 1}/{tc.epochs}",
                                            refresh=False)
                        bar.update(epoch * steps_per_epoch + k + 1 - bar.n)
                flush(epoch, steps_per_epoch)
                checkpoint(epoch + 1, 0, final=True)  # syncs every member's solo modules
                stopped: list[_Member] = []
                for m in alive:
                    _end_of_epoch(m.run, m.cfg, epoch, m.G, m.fixed_z, m.D, m.data,
                                  loss.sigmoid, m.domain, m.ema)
                    if m.evaluator is not None and m.evaluator.due(epoch + 1):
                        m.evaluator(epoch + 1,
                                    m.ema.generator() if m.ema is not None else m.G, bar, step)
                    last = dict(zip(EVENT_KEYS, m.last_row))
                    if m.evaluator is not None and m.evaluator.plateaued:
                        m.run.update_meta(epochs_done=epoch + 1, step=step, last=last,
                                          stopped_early={"reason": "plateau",
                                                         "epoch": epoch + 1, "step": step,
                                                         "patience": m.cfg.eval.patience},
                                          status="completed", end_time=now_iso())
                        stopped.append(m)
                    else:
                        m.run.update_meta(epochs_done=epoch + 1, step=step, last=last)
                if stopped:  # they leave; the others go on in a smaller stack
                    alive = [m for m in alive if m not in stopped]
                    if not alive:
                        break
                    stack = _Stack(alive, cfg, loss, device)
                    stats = torch.zeros(steps_per_epoch, len(alive), 4, device=device)
                start_k = 0
    except TrainingInterrupted:
        raise
    except BaseException as e:
        for m in alive:
            with suppress(OSError, UserError):
                m.run.update_meta(status="failed", error=f"{type(e).__name__}: {e}"[:300],
                                  end_time=now_iso())
        raise
    finally:
        if bar is not None:
            bar.close()
    for m in alive:
        m.run.update_meta(status="completed", end_time=now_iso())
    return runs

