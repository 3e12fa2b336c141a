"""`make setup`'s installer (tools/install_deps.py): uv is handed pip's own settings, so both
see the same packages, and pip does the job when uv fails."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("install_deps", ROOT / "tools" / "install_deps.py")
install_deps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install_deps)


def test_uv_is_given_pips_settings_from_files_and_variables(tmp_path, monkeypatch):
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nextra-index-url = file:///srv/a/simple file:///srv/b/simple\n"
                    "constraint = /srv/caps.txt\nindex-url = https://mirror.example/simple\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("PIP_FIND_LINKS", "/srv/wheels")
    got = install_deps.pip_config(sys.executable)
    assert {"file:///srv/a/simple", "file:///srv/b/simple"} <= set(got["extra-index-url"])
    assert "/srv/wheels" in got["find-links"] and "/srv/caps.txt" in got["constraint"]
    args = install_deps.uv_args(got, "https://torch.example/cpu")
    pairs = list(zip(args[::2], args[1::2], strict=True))
    assert pairs[0] == ("--index-strategy", "unsafe-best-match")
    for pair in [("--extra-index-url", "file:///srv/a/simple"),
                 ("--extra-index-url", "file:///srv/b/simple"),
                 ("--extra-index-url", "https://torch.example/cpu"),
                 ("--find-links", "/srv/wheels"), ("-c", "/srv/caps.txt")]:
        assert pair in pairs
    assert [v for k, v in pairs if k == "--index-url"] == got["index-url"][:1]


def test_pip_does_the_job_when_uv_fails_and_a_failure_of_both_is_one_error_line(monkeypatch,
                                                                                 capsys):
    calls = []
    monkeypatch.setattr(install_deps, "with_uv", lambda py, ix: calls.append("uv") or False)
    monkeypatch.setattr(install_deps, "with_pip", lambda py, ix: calls.append("pip") or True)
    monkeypatch.delenv("GANSCOPE_NO_UV", raising=False)
    assert install_deps.main(["/venv/bin/python"]) == 0
    assert calls == ["uv", "pip"]
    assert "installing them with pip instead" in capsys.readouterr().err
    calls.clear()
    assert install_deps.main(["/venv/bin/python", "--pip-only"]) == 0
    assert calls == ["pip"]
    monkeypatch.setattr(install_deps, "with_pip", lambda py, ix: False)
    assert install_deps.main(["/venv/bin/python"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("error: pip could not install the dependencies (its messages are "
                       "above): check the network or the package index, then run `make "
                       "setup` again")


def test_uv_installs_without_compiling_everything_then_compiles_what_commands_import(
        monkeypatch):
    """Compiling all 15,700 modules was 40 s of the install; the warm-up import compiles what
    every command loads and must write the .pyc files even under PYTHONDONTWRITEBYTECODE."""
    calls = []
    monkeypatch.setattr(install_deps, "run", lambda cmd, env=None: calls.append((cmd, env)) or True)
    monkeypatch.setattr(install_deps, "pip_config", lambda py: {})
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    assert install_deps.with_uv("/venv/bin/python", None)
    (pip_uv, _), (*installs, (warm, warm_env)) = calls[0], calls[1:]
    assert pip_uv[-1] == "uv" and len(installs) == 2
    for cmd, _ in installs:
        assert cmd[:3] == ["/venv/bin/uv", "pip", "install"]
        assert "--compile-bytecode" not in cmd
    assert warm == ["/venv/bin/python", "-c", install_deps.WARM_UP]
    assert "PYTHONDONTWRITEBYTECODE" not in warm_env
    # the warm-up names modules that exist (a renamed one would fail `make setup`)
    names = install_deps.WARM_UP.removeprefix("import ").split(", ")
    assert "torch._dynamo" in names and "ganscope.cli" in names
    assert all(importlib.util.find_spec(n) is not None for n in names)


def test_a_failed_warm_up_is_a_warning_not_a_failed_install(monkeypatch, capsys):
    """The packages are installed by then: pip must not install them all again."""
    monkeypatch.setattr(install_deps, "run", lambda cmd, env=None: cmd[1:2] != ["-c"])
    monkeypatch.setattr(install_deps, "pip_config", lambda py: {})
    assert install_deps.with_uv("/venv/bin/python", None)
    assert "warning: compiling what ganscope's commands import failed" in capsys.readouterr().err


@pytest.mark.parametrize("line,key,values", [
    ("global.find-links='/opt/wheels'", "find-links", ["/opt/wheels"]),
    (":env:.find-links='/opt/wheels /opt/more'", "find-links", ["/opt/wheels", "/opt/more"]),
    ("global.cert='/etc/ssl/certs/ca-certificates.crt'", "cert",
     ["/etc/ssl/certs/ca-certificates.crt"]),
])
def test_pip_config_lines_are_read_as_pip_prints_them(monkeypatch, line, key, values):
    class Done:
        stdout = line + "\n"
    monkeypatch.setattr(install_deps.subprocess, "run", lambda *a, **k: Done())
    assert install_deps.pip_config("python")[key] == values
