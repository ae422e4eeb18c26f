"""Every shell command in the four docs runs as written (or is checked as far as it can be here).

For each line in a ```bash / ```sh / ```console block of README.md, QUICKSTART.md,
POC_GUIDE.md and CHEATSHEET.md:
  * `python locust_helper.py ...` runs with --dry-run (run, ui, target, worker), as
    it is (list, budget) or with --help (demo, compare), and must succeed;
  * `locust -f FILES ...` must load the files (`--list`);
  * `python -m pytest`, `python -m demo`, `python tests/...` and `pip install -r ...`
    must name files and modules that exist;
  * a VAR=value before a command must be a variable the kit's code reads;
  * every path-looking word must exist in the repository;
  * any other program must be on the list of those the docs may name.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from selftests.conftest import PYTHON, REPO_ROOT, run

DOCS = ["README.md", "QUICKSTART.md", "POC_GUIDE.md", "CHEATSHEET.md"]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
# Programs the docs may name that cannot (or must not) run here: they are checked only for their paths.
OTHER_PROGRAMS = {
    "source", "cd", "cp", "curl", "git", "gh", "docker", "kubectl", "export", "cat", "ls", "open",
    "xdg-open", "redis-cli", "redis-server", "apt-get", "sudo", "brew", "mkdir", "wrk", "bash",
}  # fmt: skip
HELPER_DRY_RUN = {"run", "ui", "target", "worker"}
HELPER_AS_IS = {"list", "budget"}
HELPER_HELP = {"demo", "compare"}
PLACEHOLDERS = re.compile(r"YOUR|<|example\.com|\.\.\.")


def code_blocks(text: str):
    """(language, first line number, lines) of every fenced block."""
    blocks, language, start, lines = [], None, 0, []
    for number, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"^\s*```(\w*)\s*$", line)
        if fence and language is None:
            language, start, lines = fence.group(1) or "text", number + 1, []
        elif fence:
            blocks.append((language, start, lines))
            language = None
        elif language is not None:
            lines.append(line)
    return blocks


def shell_commands():
    """Every (doc, line number, command) in the docs' shell blocks, continuation lines joined."""
    found = []
    for doc in DOCS:
        for language, start, lines in code_blocks((REPO_ROOT / doc).read_text()):
            if language not in SHELL_LANGUAGES:
                continue
            pending, first = "", start
            for offset, line in enumerate(lines):
                line = line.strip()
                if line.startswith("$ "):
                    line = line[2:]
                if not pending:
                    first = start + offset
                if line.endswith("\\"):
                    pending += line[:-1] + " "
                    continue
                command = (pending + line).strip()
                pending = ""
                if command and not command.startswith("#"):
                    found.append((doc, first, command))
    return found


COMMANDS = shell_commands()


def read_by_code(variable: str) -> bool:
    """True when the kit's code (or Locust itself) reads VARIABLE."""
    if variable.startswith("LOCUST_"):
        return True  # Locust's own settings
    sources = [REPO_ROOT / "locust_helper.py", *REPO_ROOT.glob("utils/*.py"), *REPO_ROOT.glob("demo/*.py")]
    sources += list(REPO_ROOT.glob("tests/*.py"))
    return any(f'"{variable}"' in path.read_text() for path in sources)


def split_commands(command: str) -> list[list[str]]:
    """'a && b | c > f' -> [[a...], [b...], [c...]] (redirect targets dropped)."""
    words = shlex.split(command, comments=True)
    parts, current, skip_next = [], [], False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        if word in ("&&", "||", "|", ";", "&"):
            parts.append(current)
            current = []
        elif word in (">", ">>", "2>", "<"):
            skip_next = True
        elif word.endswith("&") and len(word) > 1 and word[-2] != "\\":
            current.append(word[:-1])
        else:
            current.append(word)
    parts.append(current)
    return [p for p in parts if p]


def check_paths(words: list[str], where: str) -> None:
    for word in words:
        if "://" in word or word.startswith("-") or PLACEHOLDERS.search(word) or "=" in word:
            continue
        looks_like_path = re.fullmatch(r"[\w./-]+\.(py|toml|md|txt|yml|yaml|json|graphql|csv|example)", word) or (
            re.fullmatch(r"(tests|utils|demo|bench|selftests|thresholds|deploy|dashboards|\.github)/[\w./-]*", word)
        )
        if looks_like_path and not word.startswith(("reports/", "/tmp/")) and "*" not in word:
            for candidate in word.split(",") if "," in word else [word]:
                known = (REPO_ROOT / candidate).exists() or (REPO_ROOT / ".github/workflows" / candidate).exists()
                assert known or candidate in (".env", "schema.graphql"), f"{where}: {candidate} does not exist"


def run_helper(args: list[str], env: dict) -> tuple[int, str]:
    """locust_helper.main(ARGS) in this process, with ENV set (fast: no new interpreter per command)."""
    import contextlib
    import io
    import os

    import locust_helper

    saved = dict(os.environ)
    output = io.StringIO()
    try:
        os.environ.update(env)
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            try:
                code = locust_helper.main(args)
            except SystemExit as stop:  # --help
                code = stop.code or 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return code, output.getvalue()


def helper_check(args: list[str], env: dict, where: str) -> None:
    if not args or args[0].startswith("-"):
        code, output = run_helper(args, env)
    elif args[0] in HELPER_DRY_RUN:
        extra = [] if "--dry-run" in args else ["--dry-run"]
        if "--" in args:
            index = args.index("--")
            args = args[:index] + extra + args[index:]
        else:
            args = args + extra
        code, output = run_helper(args, env)
    elif args[0] in HELPER_AS_IS:
        ledger = ["--reports-dir", "/nonexistent"] if args[0] == "budget" else []
        code, output = run_helper([*args, *ledger], env)
        if args[0] == "budget":
            assert code in (0, 3), f"{where}: {output}"
            return
    elif args[0] in HELPER_HELP:
        code, output = run_helper([args[0], "--help"], env)
    else:
        pytest.fail(f"{where}: unknown helper command {args[0]!r}")
    assert code == 0, f"{where}: exit {code}\n{output}"


@pytest.mark.parametrize(("doc", "line", "command"), COMMANDS, ids=[f"{d}:{n}" for d, n, _ in COMMANDS])
def test_command_in_the_docs(doc, line, command, tmp_path):
    where = f"{doc}:{line}: {command}"
    env = {"ENV_FILE": str(tmp_path / "empty.env")}
    (tmp_path / "empty.env").write_text("")
    for words in split_commands(command):
        # VAR=value before a command: a variable the kit reads.
        while words and re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", words[0]):
            name, value = words.pop(0).split("=", 1)
            assert read_by_code(name), f"{where}: the code does not read {name}"
            if not PLACEHOLDERS.search(value) and name not in ("ENV_FILE", "THRESHOLDS_FILE", "GRAPHQL_SCHEMA"):
                env[name] = value
        if not words:
            continue
        check_paths(words, where)
        program = words[0]
        if program in ("python", "python3", ".venv/bin/python", "py"):
            args = words[1:]
            if args[:1] == ["locust_helper.py"]:
                helper_check(args[1:], env, where)
            elif args[:2] == ["-m", "venv"]:
                pass
            elif args[:2] == ["-m", "pytest"]:
                assert (REPO_ROOT / "selftests").is_dir()
            elif args[:2] == ["-m", "demo"]:
                assert run([PYTHON, "-m", "demo", "--help"], timeout=30).returncode == 0, where
            elif args[:2] == ["-m", "utils.graphql_client"]:
                assert (REPO_ROOT / "utils/graphql_client.py").exists(), where
            elif args and args[0].endswith(".py"):
                assert (REPO_ROOT / args[0]).exists(), f"{where}: {args[0]} does not exist"
            elif args[:2] == ["-m", "pip"]:
                pass
            else:
                pytest.fail(f"{where}: a python command the docs test does not know")
        elif program in ("pip", ".venv/bin/pip", "pip3"):
            if "-r" in words:
                assert (REPO_ROOT / words[words.index("-r") + 1]).exists(), where
        elif program in ("locust", ".venv/bin/locust"):
            files = words[words.index("-f") + 1] if "-f" in words else "locustfile.py"
            result = run([PYTHON, "-m", "locust", "-f", files, "--list"], env=env, timeout=60)
            assert result.returncode == 0, f"{where}: {result.output}"
        elif program == "actionlint":
            binary = str(Path(PYTHON).parent / "actionlint")
            result = run([binary, *words[1:]], timeout=60)
            assert result.returncode == 0, f"{where}: {result.output}"
        elif program.startswith("./") or program.startswith(".ci/"):
            assert (REPO_ROOT / program).exists(), where
        else:
            assert program in OTHER_PROGRAMS, f"{where}: the docs test does not know the program {program!r}"


def test_every_doc_has_commands():
    counts = {doc: sum(1 for d, _, _ in COMMANDS if d == doc) for doc in DOCS}
    assert all(counts.values()), counts


def test_readme_settings_table_lists_only_variables_the_code_reads():
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    names = set(re.findall(r"`([A-Z][A-Z0-9_]{2,})`", section))
    assert len(names) > 15
    for name in sorted(names):
        assert read_by_code(name), f"README lists {name}, which no code reads"


def test_env_example_documents_every_variable_the_readme_lists():
    example = (REPO_ROOT / ".env.example").read_text()
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    for name in set(re.findall(r"`([A-Z][A-Z0-9_]{2,})`", section)) - {"ENV_FILE"}:
        assert re.search(rf"^#?\s*{name}=", example, re.M), f".env.example does not document {name}"


def test_readme_gives_the_two_commands_and_ci_runs_the_test_command():
    readme = (REPO_ROOT / "README.md").read_text()
    commands = [c for d, _, c in COMMANDS if d == "README.md"]
    setup_and_demo = [c for c in commands if c.startswith("python3 -m venv") and c.endswith("locust_helper.py demo")]
    setup_and_test = [c for c in commands if c.startswith("python3 -m venv") and c.endswith("-m pytest")]
    assert len(setup_and_demo) == 1 and len(setup_and_test) == 1, commands
    assert setup_and_test[0] in (REPO_ROOT / ".ci/run").read_text()
    assert "## The two commands" in readme
