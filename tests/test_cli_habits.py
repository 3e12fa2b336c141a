"""Issue 18, "Devices users have" and "Shell habits": --device mps/auto, `ganscope completion`,
`ganscope config`, help on every option, and sibling commands taking the same forms."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
import yaml

import ganscope.domains
import ganscope.lab2d.matrix
import ganscope.training.loop as loop
from ganscope.cli import build_parser, main
from ganscope.config import apply_overrides, from_dict, load_config, save_yaml
from ganscope.errors import ConfigError, UserError
from ganscope.training.distributed import DistInfo
from ganscope.training.run import Run

MPS_LINE = ("MPS was asked for (--device mps) but this torch build or machine has no MPS "
            "(Apple silicon, macOS 12.3+): use --device cpu, or --device auto")


def run_cli(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


# --- devices ------------------------------------------------------------------------------------


def _machine(monkeypatch, cuda: bool, mps: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize("cuda,mps,picked", [
    (True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_auto_picks_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, picked):
    _machine(monkeypatch, cuda, mps)
    assert loop.resolve_device("auto").type == picked


def test_mps_is_taken_where_torch_has_it(monkeypatch):
    _machine(monkeypatch, cuda=False, mps=True)
    assert loop.resolve_device("mps") == torch.device("mps")
    assert loop.resolve_device("cpu") == torch.device("cpu")


def test_mps_without_mps_is_one_line(monkeypatch):
    _machine(monkeypatch, cuda=True, mps=False)
    with pytest.raises(ConfigError) as e:
        loop.resolve_device("mps")
    assert str(e.value) == MPS_LINE


def test_torchrun_ranks_never_get_mps(monkeypatch):
    _machine(monkeypatch, cuda=False, mps=True)
    two = DistInfo(rank=0, world=2)
    assert loop.resolve_device("auto", two) == torch.device("cpu")
    with pytest.raises(ConfigError, match="cannot be shared by torchrun processes"):
        loop.resolve_device("mps", two)


def test_train_device_mps_without_mps_fails_before_reading_data(monkeypatch, tmp_path, capsys):
    _machine(monkeypatch, cuda=False, mps=False)

    def no_data(*a, **k):
        raise AssertionError("data was read")

    monkeypatch.setattr(ganscope.domains, "load_dataset", no_data)
    rc, out, err = run_cli(capsys, "train", "e1-mlp", "--device", "mps", "--runs-dir",
                           str(tmp_path / "runs"), "--no-progress")
    assert (rc, out, err) == (2, "", f"error: {MPS_LINE}\n")
    assert not (tmp_path / "runs").exists()
    # the same through the config: --set train.device=mps
    rc, _, err = run_cli(capsys, "train", "e1-mlp", "--set", "train.device=mps", "--runs-dir",
                         str(tmp_path / "runs"))
    assert (rc, err) == (2, f"error: {MPS_LINE}\n")


def test_config_accepts_mps_and_names_it():
    cfg = apply_overrides(load_config("e1-mlp"), ["train.device=mps"])
    assert cfg.validate().train.device == "mps"
    with pytest.raises(ConfigError, match=r"^bad config: train.device must be cpu, cuda, mps "
                                          r"or auto"):
        apply_overrides(load_config("e1-mlp"), ["train.device=tpu"]).validate()


def _device_choices(p: argparse.ArgumentParser):
    for action in p._actions:
        if "--device" in action.option_strings:
            yield action.choices
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _device_choices(sub)


def test_every_device_option_offers_mps():
    choices = list(_device_choices(build_parser()))
    assert choices and all(list(c) == ["cpu", "cuda", "mps", "auto"] for c in choices)


# --- completion ---------------------------------------------------------------------------------


def _complete(script: str, cwd, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` (COMP_WORDS/COMP_CWORD as readline sets them)."""
    words_sh = " ".join(f"'{w}'" for w in words)
    prog = (f"source {script}\nCOMP_WORDS=({words_sh})\nCOMP_CWORD={len(words) - 1}\n"
            "COMPREPLY=()\n_shtab_ganscope\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog], cwd=cwd,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.splitlines() if w]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion_completes_commands_and_presets(tmp_path, capsys):
    pytest.importorskip("shtab")
    rc, out, err = run_cli(capsys, "completion", "bash")
    assert rc == 0, err
    script = tmp_path / "ganscope.bash"
    script.write_text(out)
    cwd = tmp_path / "empty"
    cwd.mkdir()
    assert _complete(script, cwd, "ganscope", "tr") == ["train"]
    assert _complete(script, cwd, "ganscope", "train", "e1") == ["e1-mlp"]
    assert _complete(script, cwd, "ganscope", "train", "e5-gan-") == ["e5-gan-adam",
                                                                     "e5-gan-rmsprop"]
    assert _complete(script, cwd, "ganscope", "sweep", "e1") == ["e1-mlp"]
    assert _complete(script, cwd, "ganscope", "config", "e1") == ["e1-mlp"]
    assert _complete(script, cwd, "ganscope", "train", "--device", "m") == ["mps"]
    (cwd / "mine.yaml").write_text("seed: 1\n")
    (cwd / "mine.txt").write_text("")
    assert _complete(script, cwd, "ganscope", "train", "mi") == ["mine.yaml"]


def test_zsh_completion_lists_the_presets(capsys):
    pytest.importorskip("shtab")
    rc, out, _ = run_cli(capsys, "completion", "zsh")
    assert rc == 0 and out.startswith("#compdef ganscope")
    assert "_ganscope_preset_or_file" in out and "e1-mlp e2-cnn" in out


def test_completion_without_shtab_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "shtab", None)  # import shtab -> ImportError
    rc, out, err = run_cli(capsys, "completion", "bash")
    assert (rc, out, err) == (2, "", "error: ganscope completion needs shtab: pip install shtab\n")


# --- ganscope config ----------------------------------------------------------------------------


def test_config_prints_what_train_would_save(monkeypatch, tmp_path, capsys):
    opts = ["e5-gan-adam", "--set", "train.epochs=3", "--set", "optim.lr=1e-3", "--seed", "7",
            "--data-dir", str(tmp_path / "data")]
    rc, out, err = run_cli(capsys, "config", *opts)
    assert rc == 0, err
    assert not (tmp_path / "runs").exists()  # $GANSCOPE_RUNS (conftest): no run made
    printed = from_dict(yaml.safe_load(out))
    assert (printed.seed, printed.train.epochs, printed.optim.lr) == (7, 3, 1e-3)
    assert printed.data.dir == str((tmp_path / "data").resolve())

    saved = {}

    def create(cfg, runs_dir=None, name=None):
        saved["yaml"] = save_yaml(cfg)
        raise UserError("stop here")

    fake = SimpleNamespace(images=range(10_000), kind="images")  # never read: train stops first
    monkeypatch.setattr(ganscope.domains, "load_dataset", lambda *a, **k: fake)
    monkeypatch.setattr(Run, "create", staticmethod(create))
    rc, _, err = run_cli(capsys, "train", *opts)
    assert (rc, err) == (2, "error: stop here\n")
    assert out == saved["yaml"]  # exactly the config.yaml train writes
    assert printed == from_dict(yaml.safe_load(saved["yaml"]))


def test_config_errors_are_trains(capsys):
    for bad in (["--set", "train.foo=1"], ["--set", "train.epochs=0"], ["--set", "nokey"]):
        rc_c, out_c, err_c = run_cli(capsys, "config", "e1-mlp", *bad)
        rc_t, _, err_t = run_cli(capsys, "train", "e1-mlp", *bad)
        assert (rc_c, out_c) == (2, "")
        assert err_c == err_t and err_c.startswith("error: ") and err_c.count("\n") == 1
    rc, _, err = run_cli(capsys, "config", "e9-nope")
    assert rc == 2 and err.startswith("error: unknown preset 'e9-nope': choose one of best-cpu, cond-cpu, "
                                   "e1-mlp")


# --- help on every option -----------------------------------------------------------------------


def _walk(p: argparse.ArgumentParser, path: str):
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                yield f"{path} {choice.dest}", choice
            for name, sub in action.choices.items():
                yield from _walk(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield f"{path} {'/'.join(action.option_strings) or action.dest}", action


def test_every_option_of_every_subcommand_has_help():
    actions = list(_walk(build_parser(), "ganscope"))
    assert len(actions) > 150  # the walk reached the nested subcommands
    missing = [where for where, action in actions if not (action.help or "").strip()]
    assert missing == []


# --- sibling commands, same forms ---------------------------------------------------------------


@pytest.mark.parametrize("argv,dest,value", [
    (["latent", "walk", "r", "--from", "a", "--to", "b", "--steps", "-3:3:7"], "steps",
     "-3:3:7"),
    (["latent", "walk", "r", "--from", "a", "--to", "b", "--steps=-3:3:7"], "steps", "-3:3:7"),
    (["latent", "edit", "r", "--dims", "1", "--shift", "-10,0,10"], "shift", "-10,0,10"),
    (["latent", "edit", "r", "--dims", "1", "--shift=-10,0,10"], "shift", "-10,0,10"),
    (["latent", "edit", "r", "--dims", "1", "--set", "-1,5,10"], "set", "-1,5,10"),
    (["latent", "edit", "r", "--dims", "1", "--set", "-.5"], "set", "-.5"),
    (["latent", "probe", "r", "--values", "-3,-2,-1,0,1,2,3"], "values", "-3,-2,-1,0,1,2,3"),
    (["latent", "check", "r", "--values", "-2.5,0,2.5"], "values", "-2.5,0,2.5"),
    (["directions", "walk", "r", "--direction", "male", "--steps", "-3:3:9"], "steps",
     "-3:3:9"),
    (["directions", "walk", "r", "--direction", "male", "--steps=-3:3:9"], "steps", "-3:3:9"),
])
def test_negative_values_follow_the_option_with_a_space_or_equals(argv, dest, value):
    assert getattr(build_parser().parse_args(argv), dest) == value


def test_a_missing_negative_value_still_names_both_forms():
    with pytest.raises(UserError) as e:
        build_parser().parse_args(["latent", "walk", "r", "--from", "a", "--to", "b",
                                   "--steps"])
    assert str(e.value) == "--steps needs a value, e.g. --steps -3:3:7 or --steps=-3:3:7"


def _lab2d_seeds(monkeypatch, capsys, *seeds: str) -> tuple[list[int] | None, str]:
    got = {}

    def run_matrix(out, data, cells, seeds, *a, **k):
        got["seeds"] = seeds
        raise UserError("stop here")

    monkeypatch.setattr(ganscope.lab2d.matrix, "run_matrix", run_matrix)
    rc, _, err = run_cli(capsys, "lab2d", *(("--seeds", *seeds) if seeds else ()))
    assert rc == 2
    return got.get("seeds"), err


def test_lab2d_and_sweep_take_seeds_in_one_form(monkeypatch, capsys):
    p = build_parser()
    sweep_default = p.parse_args(["sweep", "e1-mlp"]).seeds
    lab2d_default = p.parse_args(["lab2d"]).seeds
    assert sweep_default == lab2d_default == "0-2"  # lab2d's old default: a count of 3
    assert _lab2d_seeds(monkeypatch, capsys) == ([0, 1, 2], "error: stop here\n")
    assert _lab2d_seeds(monkeypatch, capsys, "0-4")[0] == [0, 1, 2, 3, 4]
    assert _lab2d_seeds(monkeypatch, capsys, "0-2,9")[0] == [0, 1, 2, 9]
    assert _lab2d_seeds(monkeypatch, capsys, "0,5")[0] == [0, 5]
    # one number is that one seed, as for sweep; a note says so, since it once was a count
    seeds, err = _lab2d_seeds(monkeypatch, capsys, "5")
    assert seeds == [5]
    assert err == ("note: --seeds 5 runs the one seed 5; for 5 seeds write --seeds 0-4\n"
                   "error: stop here\n")
    assert _lab2d_seeds(monkeypatch, capsys, "0") == ([0], "error: stop here\n")
    # a bad value is sweep's own line
    seeds, err = _lab2d_seeds(monkeypatch, capsys, "x")
    rc, _, sweep_err = run_cli(capsys, "sweep", "e1-mlp", "--seeds", "x")
    assert seeds is None and err == sweep_err == (
        "error: bad --seeds 'x': give seeds as a range or a list, e.g. 0-4, 0,1,2 or 0-2,9\n")


def test_format_seeds_inverts_parse_seeds():
    from ganscope.experiments.sweep import format_seeds, parse_seeds

    for seeds, text in (([0, 1, 2], "0-2"), ([0, 2, 7], "0,2,7"), ([0, 1, 2, 9], "0-2,9"),
                        ([3], "3")):
        assert format_seeds(seeds) == text and parse_seeds(text) == seeds


def test_sibling_options_read_alike():
    """Where sibling commands share an option they show the same metavar."""
    p = build_parser()
    seen: dict[str, set] = {}
    for _where, action in _walk(p, "ganscope"):
        for flag in ("--workers", "--runs-dir", "--data-dir"):
            if flag in action.option_strings:
                seen.setdefault(flag, set()).add(action.metavar)
    assert seen == {"--workers": {"N"}, "--runs-dir": {"DIR"}, "--data-dir": {"DIR"}}


def test_commands_with_progress_bars_can_turn_them_off():
    p = build_parser()
    for argv in (["train", "e1-mlp"], ["generate", "r", "--out", "g.png"], ["eval", "r"],
                 ["sweep", "e1-mlp"], ["lab"], ["latent", "probe", "r"], ["latent", "check", "r"],
                 ["directions", "find", "r", "--method", "mean"],
                 ["directions", "walk", "r", "--direction", "male"]):
        assert p.parse_args([*argv, "--no-progress"]).no_progress is True, argv


def test_a_reader_that_leaves_early_gets_no_traceback():
    """`ganscope presets | head -1`: the pipe closes before ganscope writes (it is still
    importing torch when the parent closes its end), so every write hits EPIPE."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-m", "ganscope", "presets"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=120) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err, err
