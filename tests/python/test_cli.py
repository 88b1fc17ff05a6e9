"""CLI shape, config precedence and error reporting, through the real build/qlake binary."""

import json

import pytest


def test_help_lists_every_subcommand(run_qlake):
    out = run_qlake("--help").stdout
    for cmd in ("synth", "calendar", "profile", "config"):
        assert cmd in out
    sub = run_qlake("config", "--help").stdout
    assert "show" in sub


def test_version_names_qlake_and_arrow(run_qlake):
    out = run_qlake("--version").stdout
    assert out.startswith("qlake ")
    assert "Arrow 26." in out


def test_unknown_flag_is_a_usage_error(run_qlake):
    p = run_qlake("config", "show", "--bogus", check=False)
    assert p.returncode == 2
    assert p.stderr.startswith("qlake: error:")
    assert "--bogus" in p.stderr


def show(run_qlake, *args, env=None):
    return json.loads(run_qlake(*args, "config", "show", "--json", env=env).stdout)


def test_precedence_default_profile_file_env_flag(run_qlake, tmp_path):
    cfg = show(run_qlake)
    assert cfg["fetch.retries"]["source"] == "default"
    assert cfg["memory.limit"]["source"] == "profile"

    f = tmp_path / "qlake.yaml"
    f.write_text("fetch:\n  retries: 7\n  jobs: 3\nmemory.limit: 3GiB\n")
    cfg = show(run_qlake, "--config", f)
    assert cfg["fetch.retries"] == {"value": 7, "source": "file", "origin": f"{f}:2", "secret": False}
    assert cfg["memory.limit"]["value"] == 3 << 30

    env = {"QLAKE_FETCH__JOBS": "5"}
    cfg = show(run_qlake, "--config", f, env=env)
    assert cfg["fetch.jobs"]["value"] == 5
    assert cfg["fetch.jobs"]["origin"] == "QLAKE_FETCH__JOBS"
    assert cfg["fetch.retries"]["value"] == 7  # file value kept where env is silent

    cfg = show(run_qlake, "--config", f, "--set", "fetch.jobs=6", env=env)
    assert cfg["fetch.jobs"]["value"] == 6
    assert cfg["fetch.jobs"]["source"] == "flag"


def test_default_user_file_comes_from_xdg_config_home(run_qlake, tmp_path):
    d = tmp_path / "xdg" / "qlake"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text("log:\n  level: warn\n")
    cfg = show(run_qlake)
    assert cfg["log.level"]["value"] == "warn"
    assert cfg["log.level"]["origin"].endswith("qlake/config.yaml:2")


@pytest.mark.parametrize(
    "body, line, fragment",
    [
        ("ingest:\n  row_group_rowz: 10\n", 2, "unknown config key 'ingest.row_group_rowz'"),
        ("system:\n  threads: many\n", 2, "system.threads: expected an integer, got 'many'"),
        ("memory:\n  warn_fraction: 0.75\n  act_fraction: 7\n", 3, "memory.act_fraction must be between"),
        ("s3:\n  secret_access_key: hunter2hunter2\n", 2, "is a secret and may not be stored"),
    ],
)
def test_bad_config_file_names_key_and_line(run_qlake, tmp_path, body, line, fragment):
    f = tmp_path / "bad.yaml"
    f.write_text(body)
    p = run_qlake("--config", f, "config", "show", check=False)
    assert p.returncode == 3, p.stderr
    assert p.stderr.startswith(f"qlake: error: {f}:{line}:")
    assert fragment in p.stderr
    assert "hunter2hunter2" not in p.stderr
    assert p.stderr.count("\n") == 1  # one clear line


def test_bad_environment_variable_is_named(run_qlake):
    p = run_qlake("config", "show", env={"QLAKE_MEMORY__LIMT": "1GiB"}, check=False)
    assert p.returncode == 3
    assert "QLAKE_MEMORY__LIMT" in p.stderr
    assert "did you mean 'memory.limit'" in p.stderr


def test_missing_config_file_is_an_io_error(run_qlake, tmp_path):
    p = run_qlake("--config", tmp_path / "nope.yaml", "config", "show", check=False)
    assert p.returncode == 4
    assert "nope.yaml does not exist" in p.stderr


def test_secrets_never_appear_in_any_output(run_qlake):
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    aws = "aws-secret-from-the-standard-chain-1234"
    env = {"QLAKE_S3__SECRET_ACCESS_KEY": secret, "AWS_SECRET_ACCESS_KEY": aws}
    outputs = []
    for args in (("config", "show"), ("config", "show", "--json"), ("-vv", "config", "show"),
                 ("--log-format", "json", "-vv", "config", "show")):
        p = run_qlake(*args, env=env)
        outputs += [p.stdout, p.stderr]
    # An error whose message echoes the secret back is masked too.
    p = run_qlake("--set", f"fetch.jobs={secret}", "config", "show", env=env, check=False)
    assert p.returncode == 3
    outputs += [p.stdout, p.stderr]
    assert "****" in p.stderr
    for text in outputs:
        assert secret not in text
        assert aws not in text
    cfg = show(run_qlake, env=env)
    assert cfg["s3.secret_access_key"]["value"] == "****"
    assert cfg["s3.secret_access_key"]["source"] == "env"
