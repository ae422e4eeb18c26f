"""locust_helper.py without load: listing, dry runs, and every kind of bad input."""

import shlex

import pytest

from selftests.conftest import REPO_ROOT, assert_no_traceback, helper


def command_line(stdout: str) -> str:
    """The '$ locust ...' line a helper command printed, without the VAR=value words before locust."""
    line = next(line for line in stdout.splitlines() if line.startswith("$ "))
    return "$ " + line[line.index("locust ") :]


def test_list_names_every_scenario_with_its_file():
    result = helper("list")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert any(line.split()[:2] == ["basic", "tests/basic_test.py"] for line in lines), result.stdout
    for line in lines:
        assert (REPO_ROOT / line.split()[1]).is_file(), line


def test_dry_run_prints_the_exact_locust_command(tmp_path):
    result = helper(
        "run", "basic", "-u", "7", "-r", "3", "-t", "1h30m", "-H", "http://127.0.0.1:9",
        "--tags", "browse", "--reports-dir", str(tmp_path), "--dry-run", "--", "--loglevel", "DEBUG",
    )  # fmt: skip
    assert result.returncode == 0, result.output
    line = command_line(result.stdout)
    assert line.startswith("$ locust -f tests/basic_test.py ")
    words = shlex.split(line[2:])
    for flag, value in [("--users", "7"), ("--spawn-rate", "3"), ("--run-time", "1h30m"), ("--tags", "browse")]:
        assert words[words.index(flag) + 1] == value
    assert words[words.index("--host") + 1] == "http://127.0.0.1:9"
    assert "--headless" in words
    assert words[-2:] == ["--loglevel", "DEBUG"]  # after --: untouched, at the end
    assert not list(tmp_path.iterdir())  # a dry run writes nothing


def test_settings_come_from_the_env_file(tmp_path):
    env_file = tmp_path / "staging.env"
    env_file.write_text("TARGET_HOST=http://127.0.0.1:7777\nLOAD_USERS=4\nLOAD_DURATION=2m\n")
    result = helper("--env-file", str(env_file), "run", "basic", "--dry-run")
    assert result.returncode == 0, result.output
    words = shlex.split(command_line(result.stdout)[2:])
    assert words[words.index("--host") + 1] == "http://127.0.0.1:7777"
    assert words[words.index("--users") + 1] == "4"
    assert words[words.index("--run-time") + 1] == "2m"


def test_a_password_in_the_host_is_refused_without_showing_it():
    # Locust writes the host into its HTML report: credentials there would leak.
    result = helper("run", "basic", "-H", "http://admin:topsecret@127.0.0.1:8080", "--dry-run")
    assert result.returncode == 2
    assert "topsecret" not in result.output
    assert result.stderr.startswith("error: --host='http://admin:***@127.0.0.1:8080' is not valid")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "basic", "-u", "0"], "error: --users='0' is not valid"),
        (["run", "basic", "-u", "-3"], "error: --users='-3' is not valid"),
        (["run", "basic", "-u", "many"], "error: --users='many' is not valid"),
        (["run", "basic", "-r", "0"], "error: --spawn-rate='0' is not valid"),
        (["run", "basic", "-t", "5 minutes"], "error: --duration='5 minutes' is not valid"),
        (["run", "basic", "-H", "localhost:8080"], "error: --host='localhost:8080' is not valid"),
        (["run", "basic", "-H", ""], "error: --host='' is not valid"),
        (["run", "nosuch"], "error: unknown scenario 'nosuch'"),
        (["run", "basic", "--no-such-option"], "error: unrecognized arguments: --no-such-option"),
        (["frobnicate"], "error: argument COMMAND: invalid choice: 'frobnicate'"),
        ([], "error: the following arguments are required: COMMAND"),
        (["list", "--", "-x"], "error: '--' arguments are for locust"),
        (["ui", "basic", "--web-port", "70000"], "error: --web-port=70000 is not valid"),
        (["target", "--port", "-1"], "error: --port=-1 is not valid"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, expected):
    result = helper(*args, "--dry-run") if args and args[0] in ("run", "ui", "target") else helper(*args)
    assert result.returncode == 2, result.output
    assert_no_traceback(result)
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(expected), result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [("LOAD_USERS", "0"), ("LOAD_DURATION", "5 minutes"), ("TARGET_HOST", "example.com"), ("REDIS_URL", "x://y")],
)
def test_bad_environment_is_one_line_naming_the_variable(variable, value):
    result = helper("run", "basic", "--dry-run", env={variable: value})
    assert result.returncode == 2
    assert_no_traceback(result)
    assert result.stderr.startswith(f"error: {variable}={value!r} is not valid"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_documents_the_exit_codes():
    result = helper("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for fragment in ("0 passed", "2 usage/configuration error", "3 gate failed", "4 no usable results"):
        assert fragment in text


def test_ui_dry_run_binds_to_localhost():
    result = helper("ui", "basic", "--dry-run")
    assert result.returncode == 0
    words = shlex.split(command_line(result.stdout)[2:])
    assert words[words.index("--web-host") + 1] == "127.0.0.1"
    assert "--headless" not in words


def test_a_locustfile_path_is_accepted_as_scenario():
    result = helper("run", "tests/basic_test.py", "--dry-run")
    assert result.returncode == 0
    assert "-f tests/basic_test.py" in result.stdout
