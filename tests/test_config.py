"""Presets, YAML files, --set overrides, validation and the dict round trip of RunConfig."""

from __future__ import annotations

import dataclasses

import pytest

from ganscope.config import (
    LossConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
    apply_overrides,
    from_dict,
    load_config,
    preset_names,
    save_yaml,
)
from ganscope.errors import ConfigError

TRAIN_KEYS = ("epochs, minutes, batch_size, n_critic, shuffle, drop_last, device, precision, "
              "compile, channels_last, threads, flush_denormals, sample_every, n_samples, "
              "save_generators")


def config_error(fn, *args) -> str:
    with pytest.raises(ConfigError) as excinfo:
        fn(*args)
    return str(excinfo.value)


def set_error(*overrides: str) -> str:
    return config_error(apply_overrides, load_config("e1-mlp"), list(overrides))


# --------------------------------------------------------------------------------------------
# Presets


def test_shipped_presets_exist():
    assert {"e1-mlp", "e2-cnn", "e2-dcgan", "e2-dcgan-fixed", "e2-tiny-cnn"} <= set(
        preset_names())


def test_e1_mlp_preset():
    cfg = load_config("e1-mlp")
    assert cfg.preset == "e1-mlp"
    assert cfg.seed == 0
    assert (cfg.data.name, cfg.data.split, cfg.data.dir, cfg.data.limit) == (
        "fashion-mnist", "train", None, None)
    assert (cfg.model.name, cfg.model.z_dim, cfg.model.init) == ("mlp", 100, "default")
    assert cfg.loss.name == "bce"
    assert cfg.optim.name == "adam"
    assert cfg.optim.lr == 2e-4 and isinstance(cfg.optim.lr, float)
    assert cfg.optim.betas == (0.9, 0.999)
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.n_critic) == (10, 64, 1)
    for net in ("g", "d"):
        r = cfg.optim.resolved(net)
        assert (r["name"], r["lr"], r["betas"]) == ("adam", 2e-4, (0.9, 0.999))
    assert cfg.validate() is cfg


@pytest.mark.parametrize("preset,model,epochs", [
    ("e2-cnn", "cnn", 10), ("e2-dcgan", "dcgan", 10), ("e2-tiny-cnn", "tiny-cnn", 20)])
def test_e2_presets(preset, model, epochs):
    cfg = load_config(preset).validate()
    assert (cfg.preset, cfg.model.name, cfg.train.epochs) == (preset, model, epochs)
    assert (cfg.optim.name, cfg.optim.lr, cfg.loss.name, cfg.train.batch_size) == (
        "adam", 2e-4, "bce", 64)


def test_unknown_preset(tmp_path, monkeypatch):
    presets = tmp_path / "presets"
    presets.mkdir()
    for name in ("b-two", "a-one"):
        (presets / f"{name}.yaml").write_text("seed: 1\n")
    monkeypatch.setenv("GANSCOPE_CONFIGS", str(presets))
    assert config_error(load_config, "e9-nope") == (
        "unknown preset 'e9-nope': choose one of a-one, b-two, or give a path to a YAML config"
    )
    assert load_config("a-one").seed == 1


def test_unknown_preset_lists_the_shipped_ones():
    msg = config_error(load_config, "nope")
    assert msg == (f"unknown preset 'nope': choose one of {', '.join(preset_names())}, "
                   "or give a path to a YAML config")
    assert "e1-mlp, " in msg


# --------------------------------------------------------------------------------------------
# --set overrides


def test_overrides_values_and_types():
    cfg = apply_overrides(load_config("e1-mlp"), [
        "train.epochs=20", "optim.lr=1e-4", "optim.betas=[0.5,0.999]", "optim.d.lr=4e-4",
        "train.shuffle=false", "data.limit=500", "model.init=dcgan", "seed=7",
    ])
    assert cfg.train.epochs == 20 and type(cfg.train.epochs) is int
    assert cfg.optim.lr == 1e-4 and type(cfg.optim.lr) is float  # YAML reads "1e-4" as a string
    assert cfg.optim.betas == (0.5, 0.999) and type(cfg.optim.betas) is tuple
    assert cfg.optim.d.lr == 4e-4 and type(cfg.optim.d.lr) is float
    assert cfg.optim.resolved("d")["lr"] == 4e-4
    assert cfg.optim.resolved("g")["lr"] == 1e-4
    assert cfg.optim.resolved("d")["betas"] == (0.5, 0.999)
    assert cfg.train.shuffle is False
    assert cfg.data.limit == 500
    assert cfg.model.init == "dcgan"
    assert cfg.seed == 7
    assert cfg.preset == "e1-mlp"
    cfg.validate()


def test_per_network_override_keeps_the_other_network():
    base = load_config("e1-mlp")
    cfg = apply_overrides(base, ["optim.d.lr=4e-4", "optim.g.betas=[0.5, 0.9]",
                                 "optim.d.name=rmsprop"])
    d, g = cfg.optim.resolved("d"), cfg.optim.resolved("g")
    assert (d["lr"], d["name"], d["betas"]) == (4e-4, "rmsprop", (0.9, 0.999))
    assert (g["lr"], g["name"], g["betas"]) == (2e-4, "adam", (0.5, 0.9))
    assert cfg.optim.lr == 2e-4  # the shared value is untouched
    # apply_overrides returns a new config; the input is unchanged.
    assert base.optim.d.lr is None and base == load_config("e1-mlp")


def test_override_float_forms():
    cfg = load_config("e1-mlp")
    assert apply_overrides(cfg, ["optim.lr=0.001"]).optim.lr == 0.001
    assert apply_overrides(cfg, ["optim.lr=1"]).optim.lr == 1.0
    assert type(apply_overrides(cfg, ["optim.lr=1"]).optim.lr) is float
    assert apply_overrides(cfg, ["optim.lr=2.5E-3"]).optim.lr == 2.5e-3
    assert apply_overrides(cfg, ["data.limit=null"]).data.limit is None
    assert apply_overrides(cfg, ["optim.d.lr=null"]).optim.d.lr is None


def test_override_unknown_top_level_key():
    assert set_error("bogus=1") == (
        "unknown config key 'bogus' in --set bogus=1: valid keys at the top level are "
        "preset, seed, data, model, loss, optim, train, eval, tech, log"
    )


def test_override_unknown_nested_key():
    assert set_error("train.epoch=3") == (
        f"unknown config key 'train.epoch' in --set train.epoch=3: valid keys under 'train' are "
        f"{TRAIN_KEYS}"
    )
    assert set_error("optim.d.lrr=1") == (
        "unknown config key 'optim.d.lrr' in --set optim.d.lrr=1: valid keys under 'optim.d' are "
        "name, lr, betas, momentum, alpha, eps, weight_decay"
    )


def test_override_key_below_a_value():
    assert set_error("train.epochs.x=3") == (
        "unknown config key 'train.epochs.x' in --set train.epochs.x=3: 'epochs' is not a section"
    )


def test_override_section_as_value():
    assert set_error("train=3") == (
        f"--set train=3: 'train' is a section; set one of its keys ({TRAIN_KEYS})"
    )


@pytest.mark.parametrize("override,expected", [
    ("train.epochs=ten", "bad value for train.epochs: expected an integer, got 'ten' "
                         "(in --set train.epochs=ten)"),
    ("train.epochs=2.5", "bad value for train.epochs: expected an integer, got 2.5 "
                         "(in --set train.epochs=2.5)"),
    ("train.epochs=true", "bad value for train.epochs: expected an integer, got True "
                          "(in --set train.epochs=true)"),
    ("train.shuffle=maybe", "bad value for train.shuffle: expected true or false, got 'maybe' "
                            "(in --set train.shuffle=maybe)"),
    ("train.shuffle=1", "bad value for train.shuffle: expected true or false, got 1 "
                        "(in --set train.shuffle=1)"),
    ("optim.lr=fast", "bad value for optim.lr: expected a number, got 'fast' "
                      "(in --set optim.lr=fast)"),
    ("optim.betas=[0.5]", "bad value for optim.betas: expected a list of 2 numbers, got [0.5] "
                          "(in --set optim.betas=[0.5])"),
    ("optim.d.lr=abc", "bad value for optim.d.lr: expected a number or null, got 'abc' "
                       "(in --set optim.d.lr=abc)"),
    ("data.limit=many", "bad value for data.limit: expected an integer or null, got 'many' "
                        "(in --set data.limit=many)"),
])
def test_override_bad_value_types(override, expected):
    assert set_error(override) == expected


def test_override_without_equals():
    assert set_error("train.epochs") == (
        "bad --set 'train.epochs': write it as key=value, e.g. train.epochs=20"
    )


# --------------------------------------------------------------------------------------------
# validate()


def invalid(cfg: RunConfig) -> str:
    return config_error(cfg.validate)


def test_validate_unknown_names():
    cfg = load_config("e1-mlp")
    assert invalid(dataclasses.replace(cfg, model=ModelConfig(name="vae"))) == (
        "unknown model 'vae': choose one of cnn, dcgan, dcgan32, dcgan64, mlp, "
        "mlp2d, sngan-resnet28, sngan-resnet32, tiny-cnn")
    assert invalid(dataclasses.replace(cfg, loss=LossConfig(name="l1"))) == (
        "unknown loss 'l1': choose one of bce, hinge, lsgan, minimax, wgan, wgan-gp")
    assert invalid(dataclasses.replace(cfg, optim=OptimConfig(name="lbfgs"))) == (
        "unknown optimizer 'lbfgs': choose one of adam, rmsprop, sgd")
    # A per-network optimiser name is checked too.
    assert invalid(apply_overrides(cfg, ["optim.g.name=adagrad"])) == (
        "unknown optimizer 'adagrad': choose one of adam, rmsprop, sgd")


@pytest.mark.parametrize("override,msg", [
    ("train.epochs=0", "train.epochs must be at least 1"),
    ("train.epochs=-3", "train.epochs must be at least 1"),
    ("train.batch_size=0", "train.batch_size must be at least 1"),
    ("train.n_critic=0", "train.n_critic must be at least 1"),
    ("model.init=xavier", "model.init must be 'default' or 'dcgan'"),
    ("data.split=valid", "data.split must be 'train' or 'test'"),
    ("data.limit=0", "data.limit must be at least 1"),
    ("train.device=tpu", "train.device must be cpu, cuda, mps or auto"),
    ("loss.clip=0", "loss.clip must be positive"),
    ("loss.gp_lambda=-1", "loss.gp_lambda must be >= 0"),
    ("optim.d.lr=0", "optim lr for D must be positive"),
    ("optim.lr=-1e-4", "optim lr for G must be positive"),
    ("optim.betas=[0.5, 1.0]", "optim betas must lie in [0, 1)"),
])
def test_validate_values(override, msg):
    cfg = apply_overrides(load_config("e1-mlp"), [override])  # types are fine ...
    assert invalid(cfg) == f"bad config: {msg}"  # ... values are not


@pytest.mark.parametrize("overrides,msg", [  # found by tests/test_fuzz_inputs.py
    (["seed=100000000000000000000000"], "seed must lie in 0..2147483647"),
    (["seed=-1"], "seed must lie in 0..2147483647"),
    (["eval.seed=2147483648"], "eval.seed must lie in 0..2147483647"),
    (["train.threads=100000000000000000000"], "train.threads must be at most 1024"),
    (["train.n_samples=10000000000000"], "train.n_samples must be at most 10000"),
    (["model.z_dim=10001"], "model.z_dim must be at most 10000"),
    (["model.name=mlp2d", "data.name=ring8", "model.g_hidden=[10001]"],
     "model.g_hidden and model.d_hidden widths must be at most 10000"),
    (["data.n_points=100000000000"], "data.n_points must be at most 10000000"),
    (["eval.n=10000000000000"], "eval.n must be at most 1000000"),
    (["data.name=ring8"], "model mlp takes 1x28x28 images but data ring8 gives 2-D points: "
                          "set model.name to mlp2d"),
    (["model.name=mlp2d"], "model mlp2d takes 2-D points but data fashion-mnist gives 1x28x28 "
                           "images: set model.name to cnn, dcgan, mlp, sngan-resnet28 or "
                           "tiny-cnn"),
])
def test_validate_refuses_what_would_crash_later(overrides, msg):
    assert invalid(apply_overrides(load_config("e1-mlp"), overrides)) == f"bad config: {msg}"


def test_check_model_fits_data_checks_image_sizes_too():
    cfg = apply_overrides(load_config("e1-mlp"), ["data.name=celeba", "data.image_size=32"])
    assert cfg.validate() is cfg  # validate() checks only points against images
    assert config_error(cfg.check_model_fits_data) == (
        "bad config: model mlp takes 1x28x28 images but data celeba gives 3x32x32 images: set "
        "model.name to dcgan32 or sngan-resnet32")
    cfg = apply_overrides(load_config("e1-mlp"), ["model.name=dcgan64"])
    assert config_error(cfg.check_model_fits_data) == (
        "bad config: model dcgan64 takes 3x64x64 images but data fashion-mnist gives 1x28x28 "
        "images: set model.name to cnn, dcgan, mlp, sngan-resnet28 or "
                           "tiny-cnn")
    load_config("e6-faces").check_model_fits_data()


@pytest.mark.parametrize("raw", ["!!int x", "!!float abc", "!!timestamp x", "!!bool maybe",
                                 "2001-02-30"])
def test_override_values_yaml_cannot_build_are_text(raw):
    """PyYAML raises ValueError/KeyError/... (not YAMLError) for these: still one line."""
    assert config_error(apply_overrides, RunConfig(), [f"seed={raw}"]) == (
        f"bad value for seed: expected an integer, got {raw!r} (in --set seed={raw})")
    assert apply_overrides(RunConfig(), [f"data.name={raw}"]).data.name == raw


def test_yaml_file_with_a_value_yaml_cannot_build(tmp_path):
    p = tmp_path / "date.yaml"
    p.write_text("seed: 2001-02-30\n")
    assert config_error(load_config, str(p)) == (
        f"config {p} holds a value YAML cannot read (ValueError: day is out of range for "
        "month): fix the file")


def test_validate_accepts_the_edges():
    cfg = apply_overrides(load_config("e1-mlp"), [
        "train.epochs=1", "loss.gp_lambda=0", "optim.betas=[0.0, 0.0]", "data.limit=1",
        "train.device=auto", "loss.name=wgan-gp", "optim.d.name=rmsprop"])
    assert cfg.validate() is cfg


# --------------------------------------------------------------------------------------------
# YAML files and the round trip


def test_yaml_file_by_path(tmp_path):
    p = tmp_path / "my-run.yaml"
    p.write_text(
        "model: {name: dcgan, init: dcgan}\n"
        "loss: {name: hinge}\n"
        "optim:\n  lr: 1e-4\n  betas: [0.5, 0.999]\n  d: {lr: 4e-4}\n"
        "train: {epochs: 3}\n"
    )
    cfg = load_config(str(p))
    assert cfg.preset == "my-run"
    assert (cfg.model.name, cfg.model.init, cfg.loss.name) == ("dcgan", "dcgan", "hinge")
    assert cfg.optim.lr == 1e-4 and type(cfg.optim.lr) is float  # "1e-4" string in YAML 1.1
    assert cfg.optim.betas == (0.5, 0.999)
    assert cfg.optim.resolved("d")["lr"] == 4e-4
    assert cfg.train.epochs == 3
    assert cfg.train.batch_size == TrainConfig().batch_size  # unspecified keys keep defaults
    assert cfg.data == RunConfig().data
    cfg.validate()
    # A preset name given in the file wins over the file name.
    p2 = tmp_path / "other.yml"
    p2.write_text("preset: named\n")
    assert load_config(str(p2)).preset == "named"


def test_malformed_yaml_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  epochs: 3\n  batch_size: [64\n")
    assert config_error(load_config, str(p)) == (
        f"config {p} is not valid YAML at line 4: fix the file"
    )


def test_yaml_file_errors(tmp_path):
    missing = tmp_path / "missing.yaml"
    assert config_error(load_config, str(missing)) == (
        f"config file {missing} not found: check the path")
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    assert config_error(load_config, str(lst)) == (
        f"config {lst} must be a YAML mapping of sections (data, model, ...)")
    typo = tmp_path / "typo.yaml"
    typo.write_text("train: {epoch: 3}\n")
    assert config_error(load_config, str(typo)) == (
        f"unknown config key 'train.epoch': valid keys under 'train' are {TRAIN_KEYS}")
    top = tmp_path / "top.yaml"
    top.write_text("trian: {epochs: 3}\n")
    assert config_error(load_config, str(top)) == (
        "unknown config key 'trian': valid keys at the top level are "
        "preset, seed, data, model, loss, optim, train, eval, tech, log")
    section = tmp_path / "section.yaml"
    section.write_text("train: 3\n")
    assert config_error(load_config, str(section)) == (
        "bad value for train: expected a mapping, got 3")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(str(empty)) == dataclasses.replace(RunConfig(), preset="empty")


@pytest.mark.parametrize("preset", ["e1-mlp", "e2-cnn", "e2-dcgan", "e2-dcgan-fixed",
                                    "e2-tiny-cnn"])
def test_dict_round_trip(preset):
    cfg = load_config(preset)
    assert from_dict(cfg.to_dict()) == cfg


def test_dict_round_trip_with_overrides_and_yaml(tmp_path):
    cfg = apply_overrides(load_config("e1-mlp"), [
        "optim.betas=[0.5,0.999]", "optim.d.betas=[0.0,0.9]", "optim.g.lr=1e-3",
        "data.dir=/some/where", "data.limit=100"])
    d = cfg.to_dict()
    assert d["optim"]["betas"] == [0.5, 0.999]  # plain lists, safe for YAML / JSON
    assert d["optim"]["d"]["betas"] == [0.0, 0.9]
    back = from_dict(d)
    assert back == cfg
    assert back.optim.d.betas == (0.0, 0.9)
    # And through YAML text, as saved in every run directory.
    p = tmp_path / "saved.yaml"
    p.write_text(save_yaml(cfg))
    assert load_config(str(p)) == cfg


@pytest.mark.parametrize("ov,line", [
    ("optim.lr=inf", "bad value for optim.lr: expected a number, got 'inf' (in --set optim.lr=inf)"),
    ("optim.lr=.nan", "bad value for optim.lr: expected a finite number, got nan (in --set optim.lr=.nan)"),
])
def test_non_finite_and_odd_numbers_are_refused(ov, line):
    from ganscope.config import RunConfig, apply_overrides
    from ganscope.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        apply_overrides(RunConfig(), [ov])
    assert str(e.value) == line


@pytest.mark.parametrize("ov,line", [
    ("optim.momentum=-1", "bad config: optim momentum must be >= 0"),
    ("optim.alpha=1.5", "bad config: optim alpha must lie in [0, 1)"),
    ("optim.d.eps=0", "bad config: optim eps must be positive"),
    ("optim.g.weight_decay=-0.1", "bad config: optim weight_decay must be >= 0"),
])
def test_optimiser_ranges(ov, line):
    from ganscope.config import RunConfig, apply_overrides
    from ganscope.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        apply_overrides(RunConfig(), [ov]).validate()
    assert str(e.value) == line


def test_e2_dcgan_fixed_uses_the_dcgan_recipe_and_the_others_the_seeds_defaults():
    dc = load_config("e2-dcgan-fixed")
    assert (dc.model.name, dc.model.init, dc.optim.betas) == ("dcgan", "dcgan", (0.5, 0.999))
    assert dc.optim.lr == load_config("e2-dcgan").optim.lr
    for name in ("e1-mlp", "e2-cnn", "e2-dcgan", "e2-tiny-cnn"):
        c = load_config(name)
        assert (c.model.init, c.optim.betas) == ("default", (0.9, 0.999))


def test_faces_cpu_is_e6_faces_with_an_ema_generator_and_nothing_else():
    """The preset is exactly the measured run (e6-faces + tech.ema 0.999 after 1,000 steps):
    the same training, step for step; only what sampling and evaluation read differs."""
    faces, base = load_config("faces-cpu").to_dict(), load_config("e6-faces").to_dict()
    assert (faces["tech"]["ema"], faces["tech"]["ema_start"]) == (0.999, 1000)
    faces["tech"].update(ema=0.0, ema_start=0)
    assert {k: v for k, v in faces.items() if k != "preset"} == \
        {k: v for k, v in base.items() if k != "preset"}
