"""CLI behaviour: help, exit codes, one-line errors without tracebacks (tracebacks only with --verbose)."""
import subprocess
import sys

import pytest

from animbench.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "animbench", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_commands():
    r = run_cli("--help")
    assert r.returncode == 0
    for command in ("list", "data", "eval", "reconstruct"):
        assert command in r.stdout


def test_list_models():
    r = run_cli("list", "models")
    assert r.returncode == 0 and "copy-source" in r.stdout


def test_user_error_is_one_line_exit_2_no_traceback(tmp_path):
    r = run_cli("eval", "--model", "copy-sorce", "--dataset", "sample", "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "did you mean 'copy-source'" in lines[0]


def test_verbose_shows_traceback(tmp_path):
    r = run_cli("--verbose", "eval", "--model", "copy-sorce", "--dataset", "sample", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "Traceback" in r.stderr


def test_missing_paths_are_user_errors(tmp_path):
    r = run_cli("eval", "--model", "copy-source", "--data-root", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "--data-root" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("data", "check", str(tmp_path / "nope"))
    assert r.returncode == 2 and "no such directory" in r.stderr


def test_usage_error_exit_2():
    r = run_cli("list", "things")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_main_in_process_exit_codes(capsys):
    with pytest.raises(SystemExit) as e:
        main(["list", "models"])
    assert e.value.code == 0
    with pytest.raises(SystemExit) as e:
        main(["eval", "--model", "nope", "--dataset", "sample", "--out", "/tmp/x-animbench-never"])
    assert e.value.code == 2


def test_list_datasets_and_metrics():
    r = run_cli("list", "datasets")
    assert r.returncode == 0 and all(name in r.stdout for name in ("vox", "taichi", "bair", "sample"))
    r = run_cli("list", "metrics")
    assert r.returncode == 0 and "ssim" in r.stdout and "higher is better" in r.stdout


def test_data_sample_then_check(tmp_path):
    out = tmp_path / "sample"
    r = run_cli("data", "sample", "--out", str(out), "--size", "64")
    assert r.returncode == 0 and (out / "test").is_dir() and (out / "train").is_dir()
    r = run_cli("data", "check", str(out), "--size", "64")
    assert r.returncode == 0 and "test: 4 videos, 128 frames" in r.stdout and r.stdout.strip().endswith("OK")
    r = run_cli("data", "check", str(out))  # the defaults of `data sample` and `data check` agree
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stderr
    (out / "test" / "broken.png").write_bytes(b"junk")
    r = run_cli("data", "check", str(out), "--size", "64")
    assert r.returncode == 1 and "broken.png: cannot read image" in r.stderr and "1 problem(s)" in r.stderr
    r = run_cli("data", "sample", "--out", str(out))
    assert r.returncode == 2 and "not empty" in r.stderr


def test_every_option_of_every_command_has_help():
    import click

    from animbench.cli import cli

    missing = []

    def walk(command, path):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, path + [name])
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip():
                missing.append(f"{' '.join(path)} {param.opts[0]}")
        if not (command.help or "").strip() and path:
            missing.append(f"{' '.join(path)} (command)")

    walk(cli, [])
    assert not missing, missing


def test_options_named_alike_across_commands():
    from animbench.cli import cli

    def options(*path):
        command = cli
        for name in path:
            command = command.commands[name]
        return {o for p in command.params for o in getattr(p, "opts", [])}

    for path in (("eval",), ("reconstruct",), ("train",), ("report",), ("demo",), ("data", "sample")):
        assert {"-o", "--out"} <= options(*path), path
    for path in (("eval",), ("reconstruct",), ("train",), ("data", "sample"), ("data", "check")):
        assert "--size" in options(*path), path
    assert "--image-size" in options("train") and "--seed" in options("eval")
