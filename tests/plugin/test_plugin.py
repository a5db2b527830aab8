"""The pytest plugin (``pytest --rasp``) run for real, in a subprocess, on a demo Flask app.

The demo app has three vulnerable routes (SQL, path, shell) and a safe twin of each; its own
suite sends only honest values and passes without the plugin. Every expected line number is
found in the app's source by a marker, so editing the app never leaves a stale number here.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

import jsonschema
import pytest
import sarif_pydantic

HERE = Path(__file__).parent
DEMO_APP = HERE / "demo_app"
SARIF_SCHEMA = json.loads((HERE / "sarif-2.1.0-subset.schema.json").read_text())

# View function -> (rule, text of its sink call, the query parameter it reads).
VULNERABLE = {
    "search": ("rasp/flow/sql", "db.execute(", "query.name"),
    "report": ("rasp/flow/path", "open(", "query.file"),
    "ping": ("rasp/flow/shell", "subprocess.run(", "query.host"),
}
SAFE = {"search_safe": "db.execute(", "report_safe": "open(", "ping_safe": "subprocess.run("}

# A fourth vulnerable route and its honest test, for the baseline: the input sits inside a
# SQL string literal (the spec's flow), and the route has a function of its own (a new
# fingerprint, which hashes rule, file, function and sink).
STARTS_ROUTE = """

@app.route("/starts")
def starts() -> dict[str, list[str]]:
    prefix = request.args["prefix"]
    db = _db()
    rows = db.execute(f"SELECT name FROM users WHERE name LIKE '{prefix}%'").fetchall()
    return {"names": [row[0] for row in rows]}
"""
STARTS_TEST = """
from app import app


def test_starts() -> None:
    response = app.test_client().get("/starts", query_string={"prefix": "ali"})
    assert response.status_code == 200
    assert response.json == {"names": ["alice"]}
"""
ATTACK_TEST = """
import pytest
from app import app


{marker}def test_attack() -> None:
    response = app.test_client().get("/search", query_string={{"name": "x' OR '1'='1"}})
    assert response.status_code == 200
"""


def _plugin_args() -> list[str]:
    # Through its entry point once pyproject declares it (and the package is reinstalled);
    # by name until then. Both at once would register the module twice.
    if any(ep.value == "rasp.pytest_plugin" for ep in entry_points(group="pytest11")):
        return []
    return ["-p", "rasp.pytest_plugin"]


PLUGIN_ARGS = _plugin_args()


@pytest.fixture
def demo(pytester: pytest.Pytester) -> pytest.Pytester:
    """The demo app and its honest suite at the root of a fresh pytester directory."""
    shutil.copytree(DEMO_APP, pytester.path, dirs_exist_ok=True)
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*PLUGIN_ARGS, "-p", "no:cacheprovider", *args, timeout=30)


def _sink_line(source: str, function: str, sink: str) -> int:
    """Line of the first ``sink`` call in the body of ``def function(``."""
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {function}("))
    return next(i for i in range(start, len(lines)) if sink in lines[i]) + 1


def _expected(source: str) -> set[tuple[str, int]]:
    return {(rule, _sink_line(source, f, sink)) for f, (rule, sink, _) in VULNERABLE.items()}


def _section(result: pytest.RunResult, title: str = "rasp findings") -> str:
    """The terminal summary section ``title``; fails when there is none."""
    lines = result.outlines
    header = re.compile(rf"^=+ {re.escape(title)} =+$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    assert start is not None, f"no {title!r} section:\n" + "\n".join(lines)
    end = next(
        (i for i in range(start + 1, len(lines)) if re.match(r"^=+ .* =+$", lines[i])), len(lines)
    )
    return "\n".join(lines[start + 1 : end])


def _problems(junit: Path) -> dict[str, list[str]]:
    """Test name -> the text of each failure or error entry it has in a JUnit XML report.

    The spec's "failure entry" may be a failing teardown (an ``<error>`` in pytest's JUnit
    XML) or a failed call (a ``<failure>``): both count.
    """
    problems: dict[str, list[str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        for entry in case:
            if entry.tag in ("failure", "error"):
                text = f"{entry.get('message', '')}\n{entry.text or ''}"
                problems.setdefault(case.get("name", ""), []).append(text)
    return problems


def _sarif_results(path: Path) -> list[dict[str, object]]:
    log = json.loads(path.read_text())
    return [result for run in log["runs"] for result in run.get("results", [])]


def _fingerprint(result: dict[str, object]) -> str:
    fingerprints = result["partialFingerprints"]
    assert isinstance(fingerprints, dict)
    return str(fingerprints["raspFinding/v1"])


def _location(result: dict[str, object]) -> tuple[str, str, int]:
    (location,) = result["locations"]  # type: ignore[misc]
    physical = location["physicalLocation"]
    return (
        physical["artifactLocation"]["uri"],
        physical["artifactLocation"].get("uriBaseId"),
        physical["region"]["startLine"],
    )


# --- the findings ---------------------------------------------------------------------------


def test_without_rasp_the_plugin_does_nothing(demo: pytest.Pytester) -> None:
    # Loaded (entry point or -p) but not enabled: even an attack passes unnoticed.
    demo.makepyfile(test_attack=ATTACK_TEST.format(marker=""))
    result = _run(demo)
    result.assert_outcomes(passed=7)
    assert result.ret == 0
    assert "rasp findings" not in result.stdout.str()


def test_flows_are_found_at_the_vulnerable_sink_lines_only(demo: pytest.Pytester) -> None:
    source = (demo.path / "app.py").read_text()
    expected = _expected(source)
    result = _run(demo, "--rasp")

    assert result.ret == 1, result.stdout.str()
    section = _section(result)
    reported_lines = {int(n) for n in re.findall(r"\bapp\.py:(\d+)", section)}
    assert reported_lines == {line for _, line in expected}, section
    rules = re.findall(r"rasp/(?:flow|attack)/[a-z_]+", section)
    assert sorted(rules) == sorted(rule for rule, _ in expected), section
    # One block per code site: a line at the margin, then its indented lines.
    blocks = re.split(r"\n(?=\S)", section)
    for rule, line in expected:
        (block,) = [block for block in blocks if f"app.py:{line}" in block]
        assert re.findall(r"rasp/(?:flow|attack)/[a-z_]+", block) == [rule], block
    for function, (_, _, source_name) in VULNERABLE.items():
        assert source_name in section, f"{function}: {source_name} not named\n{section}"
    assert "_safe" not in section, section


def test_the_plugin_does_not_observe_its_own_file_calls(pytester: pytest.Pytester) -> None:
    # Every input is checked against every file path while a request is served, and the URL
    # path "/report" gives the input "report": the app under a folder of that name makes the
    # plugin's own path handling (resolving app.py) look like a flow, unless it is kept out.
    shutil.copytree(DEMO_APP, pytester.path / "report")
    source = (pytester.path / "report" / "app.py").read_text()
    result = _run(pytester, "--rasp", "report")

    assert result.ret == 1, result.stdout.str()
    reported_lines = {int(n) for n in re.findall(r"\bapp\.py:(\d+)", _section(result))}
    assert reported_lines == {line for _, line in _expected(source)}


def test_each_triggering_test_gets_one_failure_entry_in_junit_xml(demo: pytest.Pytester) -> None:
    result = _run(demo, "--rasp", "--junitxml=j.xml")

    assert result.ret == 1
    problems = _problems(demo.path / "j.xml")
    assert set(problems) == {f"test_{function}" for function in VULNERABLE}, problems
    for function, (rule, _, _) in VULNERABLE.items():
        (text,) = problems[f"test_{function}"]
        assert rule in text, text


def test_the_ini_option_enables_the_plugin(demo: pytest.Pytester) -> None:
    demo.makeini("[pytest]\nrasp = true\n")
    result = _run(demo)
    assert result.ret == 1
    assert "rasp/flow/sql" in _section(result)


@pytest.mark.parametrize(("fail_on", "status"), [("any", 1), ("attack", 0), ("none", 0)])
def test_fail_on_decides_whether_flows_fail(
    demo: pytest.Pytester, fail_on: str, status: int
) -> None:
    result = _run(demo, "--rasp", f"--rasp-fail-on={fail_on}")
    assert result.ret == status, result.stdout.str()
    assert "rasp/flow/sql" in _section(result)
    if status == 0:
        result.assert_outcomes(passed=6)


def test_fail_on_attack_fails_on_an_attack(demo: pytest.Pytester) -> None:
    demo.makepyfile(test_attack=ATTACK_TEST.format(marker=""))
    result = _run(demo, "--rasp", "--rasp-fail-on=attack", "test_attack.py")
    assert result.ret == 1, result.stdout.str()


# --- SARIF ---------------------------------------------------------------------------------


def test_sarif_log_is_valid_sarif_2_1_0_and_points_at_the_sinks(demo: pytest.Pytester) -> None:
    source = (demo.path / "app.py").read_text()
    _run(demo, "--rasp", "--rasp-sarif=out.sarif")

    text = (demo.path / "out.sarif").read_text()
    log = json.loads(text)
    # sarif_pydantic's models accept unknown keys (extra="allow") and default a missing
    # version; strict=True at least refuses coerced types. The schema below refuses the rest.
    sarif_pydantic.Sarif.model_validate_json(text, strict=True)
    jsonschema.Draft7Validator(
        SARIF_SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    ).validate(log)

    assert log["version"] == "2.1.0"
    assert re.search(r"sarif-(schema-)?2\.1\.0\.json$", log["$schema"]), log["$schema"]
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "rasp"
    results = run["results"]
    assert {result["ruleId"] for result in results} <= {rule["id"] for rule in driver["rules"]}
    assert {(r["ruleId"], *_location(r)) for r in results} == {
        (rule, "app.py", "%SRCROOT%", line) for rule, line in _expected(source)
    }
    assert len(results) == len(VULNERABLE)
    for result in results:
        assert result["level"] == "error"
        if "ruleIndex" in result:
            assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["message"]["text"]
    assert len({_fingerprint(result) for result in results}) == len(results)


# --- baseline --------------------------------------------------------------------------------


def test_baseline_accepts_known_findings_and_fails_on_a_new_one(demo: pytest.Pytester) -> None:
    source = (demo.path / "app.py").read_text()
    _run(demo, "--rasp", "--rasp-write-baseline=b.json", "--rasp-sarif=first.sarif")

    baseline = json.loads((demo.path / "b.json").read_text())
    assert baseline["version"] == 1
    findings = baseline["findings"]
    assert {(f["rule"], f["location"]) for f in findings} == {
        (rule, f"app.py:{line}") for rule, line in _expected(source)
    }
    for finding in findings:
        assert finding["reason"].startswith("accepted"), finding
    accepted = {finding["fingerprint"] for finding in findings}
    assert accepted == {_fingerprint(r) for r in _sarif_results(demo.path / "first.sarif")}

    gate = ("--rasp", "--rasp-baseline=b.json", "--rasp-fail-on=new")
    result = _run(demo, *gate)
    result.assert_outcomes(passed=6)
    assert result.ret == 0, result.stdout.str()
    assert "baselined" in result.stdout.str()

    (demo.path / "app.py").write_text(source + STARTS_ROUTE)
    demo.makepyfile(test_more=STARTS_TEST)
    new_line = _sink_line(source + STARTS_ROUTE, "starts", "db.execute(")
    result = _run(demo, *gate, "--rasp-sarif=after.sarif", "--junitxml=j.xml")

    assert result.ret == 1, result.stdout.str()
    assert f"app.py:{new_line}" in _section(result)
    new = [r for r in _sarif_results(demo.path / "after.sarif") if _fingerprint(r) not in accepted]
    assert [(r["ruleId"], _location(r)[::2]) for r in new] == [
        ("rasp/flow/sql", ("app.py", new_line))
    ]
    # Baselined findings never fail their tests; the new one may.
    assert set(_problems(demo.path / "j.xml")) <= {"test_starts"}


def test_baseline_still_matches_when_the_sink_lines_move(demo: pytest.Pytester) -> None:
    _run(demo, "--rasp", "--rasp-write-baseline=b.json")
    app = demo.path / "app.py"
    source = app.read_text()
    anchor = '\n\n@app.route("/search")\n'
    assert anchor in source
    helper = '\n\ndef _unused() -> str:\n    return "lines below move by five"\n'
    app.write_text(source.replace(anchor, helper + anchor, 1))

    result = _run(demo, "--rasp", "--rasp-baseline=b.json", "--rasp-fail-on=new")
    result.assert_outcomes(passed=6)
    assert result.ret == 0, result.stdout.str()


# --- suppression and attacks ---------------------------------------------------------------


def _allow(source: str, function: str, sink: str, reason: str) -> str:
    lines = source.splitlines(keepends=True)
    index = _sink_line(source, function, sink) - 1
    lines[index] = lines[index].rstrip("\n") + f"  # rasp: allow {reason}\n"
    return "".join(lines)


def test_an_allow_comment_on_the_sink_line_suppresses_that_site(demo: pytest.Pytester) -> None:
    app = demo.path / "app.py"
    source = app.read_text()
    app.write_text(_allow(source, "search", "db.execute(", "names are a fixed demo list"))

    result = _run(demo, "--rasp", "--junitxml=j.xml")
    assert result.ret == 1
    assert set(_problems(demo.path / "j.xml")) == {"test_report", "test_ping"}
    assert "names are a fixed demo list" in result.stdout.str()

    for function, (_, sink, _) in VULNERABLE.items():
        source = _allow(source, function, sink, f"{function} reviewed")
    app.write_text(source)
    result = _run(demo, "--rasp")
    result.assert_outcomes(passed=6)
    assert result.ret == 0, result.stdout.str()


def test_an_attack_fails_the_test_that_sent_it(demo: pytest.Pytester) -> None:
    line = _sink_line((demo.path / "app.py").read_text(), "search", "db.execute(")
    demo.makepyfile(test_attack=ATTACK_TEST.format(marker=""))
    result = _run(demo, "--rasp", "--junitxml=j.xml", "test_attack.py")

    assert result.ret == 1
    problems = _problems(demo.path / "j.xml")
    assert list(problems) == ["test_attack"], problems
    (text,) = problems["test_attack"]
    assert "rasp" in text and "attack" in text, text
    section = _section(result)
    assert "rasp/attack/sql_injection" in section
    assert f"app.py:{line}" in section


def test_an_expected_attack_passes(demo: pytest.Pytester) -> None:
    marker = "@pytest.mark.rasp_expect_attack\n"
    demo.makepyfile(test_attack=ATTACK_TEST.format(marker=marker))
    result = _run(demo, "--rasp", "test_attack.py")

    result.assert_outcomes(passed=1)
    assert result.ret == 0, result.stdout.str()
    section = _section(result)
    assert "rasp/attack/sql_injection" in section
    assert "expected" in section


def test_an_expected_attack_does_not_excuse_another_test(demo: pytest.Pytester) -> None:
    # Same code site, two tests: the marker covers the test that carries it, not the site.
    expected = ATTACK_TEST.format(marker="@pytest.mark.rasp_expect_attack\n")
    unmarked = ATTACK_TEST.format(marker="").replace("def test_attack", "def test_attack_later")
    demo.makepyfile(test_attack=expected + unmarked)
    result = _run(demo, "--rasp", "--junitxml=j.xml", "test_attack.py")

    assert result.ret == 1, result.stdout.str()
    assert list(_problems(demo.path / "j.xml")) == ["test_attack_later"]


QUIET_APP = """
import sqlite3

from flask import Flask, render_template_string, request

app = Flask(__name__)


@app.route("/status")
def status() -> dict[str, int]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (status TEXT, name TEXT)")
    rows = db.execute(
        "SELECT name FROM t WHERE status = 'active' AND name = ?", (request.args["name"],)
    ).fetchall()
    return {"rows": len(rows)}


@app.route("/page")
def page() -> str:
    return render_template_string("<p>{{ v }}</p>", v=request.args["v"])
"""
QUIET_TEST = """
import rasp
from app import app


def test_a_value_the_query_already_holds() -> None:
    assert app.test_client().get("/status", query_string={"name": "active"}).status_code == 200


def test_a_test_that_unprotects_the_agent() -> None:
    rasp.unprotect()
    assert app.test_client().get("/page", query_string={"v": "page"}).status_code == 200
"""


def test_honest_code_gives_no_finding(pytester: pytest.Pytester) -> None:
    # A parameterised query whose own text holds the input's value ('active'), and a test
    # that turns the agent off: no finding, and the run passes.
    pytester.makepyfile(app=QUIET_APP, test_quiet=QUIET_TEST)
    result = _run(pytester, "--rasp")
    assert result.ret == 0, result.stdout.str()
    assert "none: no request input reached a sink unsafely" in _section(result)


REARMED_TEST = """
import rasp
from app import app


def test_1_turns_it_off() -> None:
    rasp.unprotect()


def test_2_vulnerable() -> None:
    assert app.test_client().get("/search", query_string={"name": "alice"}).status_code == 200
"""


def test_the_agent_is_rearmed_before_each_test(demo: pytest.Pytester) -> None:
    demo.makepyfile(test_rearmed=REARMED_TEST)
    result = _run(demo, "--rasp", "test_rearmed.py")
    result.assert_outcomes(passed=1, failed=1)
    assert "rasp/flow/sql" in _section(result)


IMPORT_TIME_TEST = """
from app import app

app.test_client().get("/search", query_string={"name": "alice"})  # at import, in no test


def test_nothing() -> None:
    pass
"""


def test_a_finding_outside_any_test_fails_the_run(demo: pytest.Pytester) -> None:
    demo.makepyfile(test_import_time=IMPORT_TIME_TEST)
    result = _run(demo, "--rasp", "test_import_time.py")
    result.assert_outcomes(passed=1)
    assert result.ret == 1
    assert "rasp/flow/sql" in _section(result)
