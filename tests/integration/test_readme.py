"""The README runs as written: its DAGs parse and run against the sandbox, its code and tests run,
and its shell commands name files that exist.

A fenced block preceded by ``<!-- readme-test: skip -->`` is not run. Python blocks are sorted by
content: a DAG file (``DAG(`` or ``@dag``), a pytest module (``def test_``), or plain code.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib

from alta_testing.environment import alta_connection
from alta_testing.servers.airflow_env import AirflowEnv

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
CONTRIBUTING = REPO / "CONTRIBUTING.md"
DIRECTIVES = {"skip"}
TOKEN = "sandbox-token"  # the token the README's sandbox commands use
OFF = {"calling_hours": "off"}
PARSE = """
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
bag = DagBag(sys.argv[1])
files = {}
for dag in bag.dags.values():
    files.setdefault(dag.fileloc, []).append(dag.dag_id)
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "files": files}))
"""


@dataclass(frozen=True)
class Block:
    """One fenced block of a Markdown file."""

    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    directive: str | None

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"

    @property
    def is_dag(self) -> bool:
        return "DAG(" in self.code or "@dag" in self.code

    @property
    def is_pytest(self) -> bool:
        return re.search(r"^def test_", self.code, re.MULTILINE) is not None


def fenced_blocks(path: Path) -> list[Block]:
    lines = path.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        match = re.match(r"^```(\w*)\s*$", lines[i])
        if not match:
            i += 1
            continue
        start = i
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        previous = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        directive = re.fullmatch(r"<!--\s*readme-test:\s*(\S+)\s*-->", previous)
        code = "\n".join(lines[start + 1 : end]) + "\n"
        found.append(Block(path, start + 1, match.group(1), code, directive and directive.group(1)))
        i = end + 1
    return found


def python_blocks(kind: str) -> list[Block]:
    blocks = [b for b in fenced_blocks(README) if b.lang == "python" and b.directive != "skip"]
    if kind == "dag":
        return [b for b in blocks if b.is_dag]
    if kind == "pytest":
        return [b for b in blocks if b.is_pytest]
    return [b for b in blocks if not b.is_dag and not b.is_pytest]


def dag_file_name(block: Block) -> str:
    return f"readme_line_{block.line}.py"


def test_the_readme_has_runnable_blocks_and_only_known_directives():
    blocks = fenced_blocks(README)
    assert {b.directive for b in blocks} <= DIRECTIVES | {None}
    skipped = [b.where for b in blocks if b.directive == "skip"]
    assert len(skipped) <= 3, f"too many blocks skipped: {skipped}"
    assert len(python_blocks("dag")) >= 3
    assert python_blocks("pytest")
    assert python_blocks("code")


def test_every_task_that_returns_data_keeps_it_out_of_the_log():
    """A ``@task`` that returns something (people, Alta's answers) has show_return_value_in_logs=False."""
    for block in python_blocks("dag") + python_blocks("code"):
        for node in ast.walk(ast.parse(block.code)):
            if not isinstance(node, ast.FunctionDef):
                continue
            returns_data = not (isinstance(node.returns, ast.Constant) and node.returns.value is None)
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                name = ast.unparse(call.func if call else decorator)
                if name != "task" or not returns_data:
                    continue
                keywords = {k.arg: k.value for k in call.keywords} if call else {}
                hidden = keywords.get("show_return_value_in_logs")
                message = f"{block.where}: @task {node.name} returns data: hide it from the log"
                assert isinstance(hidden, ast.Constant), message
                assert hidden.value is False, message


@pytest.fixture(scope="module")
def readme_env(tmp_path_factory: pytest.TempPathFactory) -> AirflowEnv:
    """A throwaway Airflow whose DAG folder holds the README's DAGs, with the README's pool."""
    home = tmp_path_factory.mktemp("readme-airflow-home")
    dags = home / "dags"
    dags.mkdir()
    for block in python_blocks("dag"):
        (dags / dag_file_name(block)).write_text(block.code)
    (home / "written.json").write_text(json.dumps({dag_file_name(b): b.where for b in python_blocks("dag")}))
    env = AirflowEnv(home, dags)
    env.airflow("db", "migrate")
    env.airflow(*shlex.split(readme_command("airflow pools set alta_api"))[1:])
    return env


def readme_command(prefix: str) -> str:
    """The first line of the README's bash blocks that starts with ``prefix``, without its comment."""
    for block in fenced_blocks(README):
        if block.lang != "bash":
            continue
        for line in block.code.splitlines():
            if line.startswith(prefix):
                return line.split("  #")[0].strip()
    raise AssertionError(f"the README has no command starting with {prefix!r}")


def test_the_readme_dags_parse_without_errors(readme_env: AirflowEnv):
    result = subprocess.run(
        [sys.executable, "-c", PARSE, str(readme_env.dags)],
        env=readme_env.env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {}
    files = {Path(path).name: ids for path, ids in parsed["files"].items()}
    for name, where in json.loads((readme_env.home / "written.json").read_text()).items():
        assert files.get(name), f"{where} defines no DAG"
    ids = {dag_id for found in files.values() for dag_id in found}
    assert ids >= {"my_first_alta_call", "call_new_leads", "q4_campaign", "sync_opt_outs", "nightly_load"}


def journal(sandbox) -> list[dict]:
    return [call["body"] for call in sandbox.calls()]


def dags_test(env: AirflowEnv, sandbox, dag_id: str) -> str:
    """``airflow dags test`` with calling hours off, as the README runs it; its whole output."""
    conn = alta_connection(sandbox.url, TOKEN)
    result = env.airflow("dags", "test", dag_id, "-c", json.dumps(OFF), AIRFLOW_CONN_ALTA_DEFAULT=conn)
    return result.stdout + result.stderr


def test_the_first_dag_runs_with_the_readmes_command(readme_env: AirflowEnv, alta_sandbox_factory):
    sandbox = alta_sandbox_factory(token=TOKEN, rate_limit=None)
    args = shlex.split(readme_command("airflow dags test my_first_alta_call"))
    assert json.loads(args[args.index("-c") + 1]) == OFF
    result = readme_env.airflow(*args[1:], AIRFLOW_CONN_ALTA_DEFAULT=alta_connection(sandbox.url, TOKEN))
    (body,) = journal(sandbox)
    assert body["assistantId"] == "asst_123"
    assert body["name"] == "Ada Lovelace"
    assert body["phoneNumber"] == "+12025550143"
    assert body["timezone"] == "America/New_York"
    assert body["data"]["plan"] == "pro"
    assert body["data"]["run_id"].startswith("manual__")
    assert "2025550143" not in result.stdout + result.stderr  # only the masked number is logged


def test_the_mapped_example_calls_each_lead_and_logs_no_number(readme_env: AirflowEnv, alta_sandbox_factory):
    sandbox = alta_sandbox_factory(token=TOKEN, rate_limit=None)
    output = dags_test(readme_env, sandbox, "call_new_leads")
    received = {b["phoneNumber"]: b for b in journal(sandbox)}
    assert set(received) == {"+12025550143", "+12025550178"}
    assert received["+12025550178"] == {
        "assistantId": "asst_123",
        "name": "Grace Hopper",
        "phoneNumber": "+12025550178",
        "timezone": "America/Chicago",
        "data": {"plan": "team"},
    }
    assert "2025550143" not in output
    assert "2025550178" not in output


def test_the_batch_example_calls_every_lead_once(readme_env: AirflowEnv, alta_sandbox_factory):
    sandbox = alta_sandbox_factory(token=TOKEN, rate_limit=None)
    output = dags_test(readme_env, sandbox, "q4_campaign")
    bodies = journal(sandbox)
    assert sorted(b["phoneNumber"] for b in bodies) == ["+12025550143", "+12025550178", "+442079460123"]
    assert {b["data"]["lead_id"] for b in bodies} == {"L001", "L002", "L003"}
    assert {b["data"]["campaign"] for b in bodies} == {"q4"}
    assert "2025550143" not in output


def test_connection_tests_need_the_setting_the_readme_names(alta_sandbox_factory, tmp_path):
    """Troubleshooting: without ``[core] test_connection`` the CLI refuses; with it, it checks the token."""
    sandbox = alta_sandbox_factory(token=TOKEN, rate_limit=None)
    env = AirflowEnv(tmp_path, tmp_path / "dags")
    conn = alta_connection(sandbox.url, TOKEN)
    setting = readme_command("export AIRFLOW__CORE__TEST_CONNECTION=").removeprefix("export ").split("=")
    args = shlex.split(readme_command("airflow connections test"))[1:]
    refused = env.airflow(*args, check=False, AIRFLOW_CONN_ALTA_DEFAULT=conn)
    assert "Testing connections is disabled in Airflow configuration" in refused.stdout + refused.stderr
    tested = env.airflow(*args, check=False, AIRFLOW_CONN_ALTA_DEFAULT=conn, **{setting[0]: setting[1]})
    assert "Connection success!" in tested.stdout
    assert sandbox.calls() == []  # the test places no call


def test_the_readme_code_blocks_run(alta_sandbox_factory, tmp_path):
    sandbox = alta_sandbox_factory(token=TOKEN, rate_limit=None)
    env_conn = alta_connection(sandbox.url, TOKEN)
    for block in python_blocks("code"):
        script = tmp_path / f"readme_line_{block.line}.py"
        script.write_text(block.code)
        result = subprocess.run(
            [sys.executable, str(script)],
            env={**AirflowEnv(tmp_path, tmp_path / "dags").env(), "AIRFLOW_CONN_ALTA_DEFAULT": env_conn},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{block.where}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"


def test_the_readme_pytest_examples_pass(tmp_path):
    for block in python_blocks("pytest"):
        module = tmp_path / f"test_readme_line_{block.line}.py"
        module.write_text(block.code)
        expected = len(re.findall(r"^def test_", block.code, re.MULTILINE))
        result = subprocess.run(
            [sys.executable, "-m", "pytest", str(module), "-q", "-p", "no:cacheprovider"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{block.where}:\n{result.stdout[-3000:]}"
        assert f"{expected} passed" in result.stdout


# --- shell commands, links ------------------------------------------------------------------------------

PATH_PREFIXES = (
    "./",
    "scripts/",
    "benchmarks/",
    "example_dags/",
    "tests/",
    "alta_testing/",
    "constraints/",
    "docs/",
)


def commands(path: Path) -> list[tuple[str, str]]:
    """(where, command) for every line of the file's bash blocks, comments and continuations aside."""
    found = []
    for block in fenced_blocks(path):
        if block.lang != "bash" or block.directive == "skip":
            continue
        for offset, line in enumerate(block.code.splitlines(), start=1):
            text = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()
            if text:
                found.append((f"{path.name}:{block.line + offset}", text))
    return found


def named_paths(command: str) -> list[str]:
    try:
        words = shlex.split(command)
    except ValueError:  # an unterminated quote: a multi-line value such as a JSON connection
        words = command.split()
    return [w.rstrip(";,") for w in words if w.startswith(PATH_PREFIXES)]


def doc_files() -> list[Path]:
    return [p for p in (README, CONTRIBUTING) if p.exists()]


def test_every_path_a_command_names_exists():
    targets = re.search(r"AIRFLOW_TARGETS=\(([^)]*)\)", (REPO / "scripts" / "lib.sh").read_text())
    assert targets is not None
    venvs = {f".venvs/airflow-{v}" for v in targets.group(1).replace('"', "").split()}
    scripts = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])
    checked = 0
    for path in doc_files():
        for where, command in commands(path):
            for name in named_paths(command):
                assert list(REPO.glob(name.removeprefix("./"))), f"{where}: {name} does not exist"
                checked += 1
            for venv in re.findall(r"\.venvs/airflow-[\d.]+", command):
                assert venv in venvs, f"{where}: {venv} is not a tested Airflow version"
            for module in re.findall(r"python\S* -m ([\w.]+)", command):
                assert importlib.util.find_spec(module) is not None, f"{where}: no module {module}"
            first = command.split()[0]
            if first.startswith("alta-"):
                assert first in scripts, f"{where}: {first} is not a command the package installs"
    assert checked >= 5


def test_ci_runs_exactly_the_readmes_test_command():
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    ci_commands = [line for line in ci if line and not line.startswith(("#", "set ", "cd "))]
    assert ci_commands == [readme_command("./scripts/test")]


def test_pip_extras_are_quoted_for_zsh():
    for path in doc_files():
        for where, command in commands(path):
            if "pip install" in command and "[" in command:
                unquoted = re.sub(r"\"[^\"]*\"|'[^']*'", "", command)
                assert "[" not in unquoted, f"{where}: quote the extras: {command}"
        for match in re.finditer(r"`pip install ([^`]*)`", path.read_text()):
            if "[" in match.group(1):
                assert match.group(1).startswith(("'", '"')), f"{path.name}: quote {match.group(0)}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    in_fence = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and (match := re.match(r"^#{1,6} (.+)$", line)):
            base = slug(match.group(1))
            name, n = base, 0
            while name in found:
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


def test_every_link_and_image_resolves():
    for path in doc_files():
        text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
        targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'<img src="([^"]+)"', text)
        for target in targets:
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part) if file_part else path
            assert linked.exists(), f"{path.name}: {target} does not exist"
            if anchor:
                assert anchor in anchors(linked), f"{path.name}: no heading for #{anchor} in {linked.name}"
