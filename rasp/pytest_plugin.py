"""Find injection flaws while an app's own tests run: ``pytest --rasp``.

The agent watches every sink call the app makes while a test request is served (the test
clients of Flask, Django and Starlette go through the frameworks' entry points, which the
agent wraps) and reports two kinds of findings, by the app's code site:

- ``rasp/attack/<kind>``: a test request's input changed the structure of the call (the
  runtime detectors). The test that sent it fails, unless marked
  ``@pytest.mark.rasp_expect_attack``.
- ``rasp/flow/<sql|shell|path|url>``: an input (3 characters or more, not only digits)
  reached the call verbatim, built into it by string operations: inside a SQL string
  literal, in a shell line, in a file path, or as the host of an outbound connection. The
  value was harmless, the code is injectable. Parameterised calls never produce one.

Policy (``--rasp-fail-on``): ``any`` finding (the default), ``attack`` only, ``new`` (not in
``--rasp-baseline``), or ``none``; a failing finding fails the test that triggered it (so
``--junitxml`` shows one failure per finding and test). ``# rasp: allow <reason>`` on the
app's line suppresses its findings. ``--rasp-sarif`` writes SARIF 2.1.0 for code scanning,
``--rasp-write-baseline`` the current findings as a baseline.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import linecache
import os
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rasp import __version__

__all__ = ["Finding"]

RULES = {
    "rasp/attack/sql_injection": "A request input changed the structure of a SQL statement.",
    "rasp/attack/shell_injection": "A request input changed the structure of a shell line.",
    "rasp/attack/path_traversal": "A request input made a file path leave its folder.",
    "rasp/attack/ssrf": "A request input chose an internal host for an outbound connection.",
    "rasp/flow/sql": "A request input is built into a SQL statement by string operations.",
    "rasp/flow/shell": "A request input is built into a shell line by string operations.",
    "rasp/flow/path": "A request input is built into a file path by string operations.",
    "rasp/flow/url": "A request input is the host of an outbound connection.",
}
_ALLOW = "rasp: allow"
_NOTHING: set[str] = set()
_SANITIZERS = (
    ("werkzeug.security", "safe_join"), ("werkzeug.utils", "safe_join"),
    ("werkzeug.utils", "secure_filename"), ("django.utils._os", "safe_join"),
)  # fmt: skip
_LIBRARY_DIRS = tuple(
    {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
)
_AGENT_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_MIN_FLOW = 3


@dataclass
class Finding:
    rule: str
    sink: str
    path: str  # the app's file, relative to the rootdir when inside it
    line: int
    function: str
    input_source: str
    statement: str
    tests: list[str] = field(default_factory=list)
    suppressed: str | None = None  # the reason given in the code
    baselined: bool = False
    expected: bool = False  # a test marked rasp_expect_attack sent it
    unexpected: bool = False  # a test not so marked sent it

    @property
    def excused(self) -> bool:
        """An attack only tests marked ``rasp_expect_attack`` sent."""
        return self.expected and not self.unexpected

    @property
    def attack(self) -> bool:
        return self.rule.startswith("rasp/attack/")

    @property
    def fingerprint(self) -> str:
        key = f"{self.rule}|{self.path}|{self.function}|{self.sink}"
        if self.rule.startswith("rasp/flow/sql"):
            key += "|" + self.statement  # literals masked: another query is another finding
        return hashlib.sha1(key.encode()).hexdigest()[:16]

    def describe(self) -> str:
        return (
            f"{self.rule} at {self.path}:{self.line} in {self.function}() "
            f"({self.sink}, input {self.input_source}): {self.statement[:200]}"
        )


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rasp", "injection flaws found while the tests run (rasp)")
    group.addoption("--rasp", action="store_true", help="watch the app's sink calls")
    group.addoption(
        "--rasp-fail-on",
        choices=("any", "attack", "new", "none"),
        default="any",
        help="which findings fail their test and the run (default: any)",
    )
    group.addoption("--rasp-baseline", metavar="PATH", help="accepted findings (JSON)")
    group.addoption("--rasp-write-baseline", metavar="PATH", help="write findings as baseline")
    group.addoption("--rasp-sarif", metavar="PATH", help="write a SARIF 2.1.0 log")
    parser.addini("rasp", "watch the app's sink calls (as --rasp)", type="bool", default=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "rasp_expect_attack: this test sends attacks on purpose (rasp)"
    )
    if config.getoption("rasp") or config.getini("rasp"):
        plugin = _Plugin(config)
        config.pluginmanager.register(plugin, "rasp-findings")


class _Plugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.root = Path(str(config.rootpath)).resolve()
        self.fail_on = str(config.getoption("rasp_fail_on"))
        self.findings: dict[tuple[str, str, int], Finding] = {}
        self.test: str | None = None
        self.expect_attack = False
        self.in_test: list[Finding] = []
        self.baseline = self._load_baseline(config.getoption("rasp_baseline"))
        self.sanitized: set[str] = set()  # what safe_join / secure_filename returned
        self._project_files: dict[str, bool] = {}

    # --- the agent ------------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        import rasp
        from rasp import guard, report

        del rasp, guard, report
        self._watch()
        self._watch_sanitizers()

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        import rasp
        from rasp import guard, report

        outside = [f for f in self.findings.values() if not f.tests and self._fails(f)]
        if outside and session.exitstatus == 0:
            session.exitstatus = 1  # found outside any test (import time, a session fixture)

        guard.flow_observer = None
        if self._on_incident in report.listeners:
            report.listeners.remove(self._on_incident)
        rasp.unprotect()
        sarif = self.config.getoption("rasp_sarif")
        if sarif:
            Path(sarif).write_text(json.dumps(self._sarif(), indent=2))
        written = self.config.getoption("rasp_write_baseline")
        if written:
            Path(written).write_text(json.dumps(self._baseline_document(), indent=2) + "\n")

    def _watch_sanitizers(self) -> None:
        """Remember what the frameworks' path sanitisers return: a path built from it, or
        an input they let through unchanged, is not an unsafe flow."""
        import importlib

        import wrapt

        def remember(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            result = wrapped(*args, **kwargs)
            if isinstance(result, str) and len(self.sanitized) < 10_000:
                self.sanitized.add(result)
            return result

        for module, name in _SANITIZERS:
            try:
                owner = importlib.import_module(module)
            except ImportError:
                continue
            if hasattr(owner, name) and not isinstance(getattr(owner, name), wrapt.ObjectProxy):
                wrapt.wrap_function_wrapper(owner, name, remember)

    def _on_incident(self, incident: Any) -> None:
        if not incident.code_file or not self._in_project(incident.code_file):
            return
        from rasp.context import current

        with _agents_own(current()):
            kind = incident.kind.value
            self._record(
                f"rasp/attack/{kind}", incident.sink, incident.code_file,
                incident.code_line or 0, incident.code_function or "?", incident.input_source,
                incident.statement,
            )  # fmt: skip

    def _on_flow(self, context: Any, family: str, sink: Any, payload: object) -> None:

        with _agents_own(context):  # the plugin's own file calls are not the app's
            frame = self._project_frame()
            if frame is None:
                return  # a call of a library's own (a template, a static file)
            code_file, code_line = frame.f_code.co_filename, frame.f_lineno
            function = frame.f_code.co_name
            inputs = [
                user_input for user_input in context.inputs()
                if user_input.value not in self.sanitized
                and not _in_constants(frame, user_input.value)
            ]  # fmt: skip
            found = _flow(family, sink, payload, inputs, self.sanitized)
            if found is not None:
                source, statement = found
                rule = f"rasp/flow/{family}"
                self._record(
                    rule, sink.name, code_file, code_line, function or "?", source, statement
                )

    def _project_frame(self) -> Any:
        """The innermost frame of the project's own code (under the rootdir, outside the
        agent, the virtualenv and the standard library), or None."""
        import sys
        from types import FrameType

        frame: FrameType | None = sys._getframe(2)
        while frame is not None:
            name = frame.f_code.co_filename
            if self._in_project(name):
                return frame
            frame = frame.f_back
        return None

    def _in_project(self, code_file: str) -> bool:
        known = self._project_files.get(code_file)
        if known is None:
            absolute = os.path.abspath(code_file)
            known = (
                not code_file.startswith("<")  # <frozen genericpath>, <string>
                and absolute.startswith(str(self.root) + os.sep)
                and not absolute.startswith(_LIBRARY_DIRS)
                and not absolute.startswith(_AGENT_DIR)
                and os.sep + "site-packages" + os.sep not in absolute
            )
            self._project_files[code_file] = known
        return known

    def _record(
        self, rule: str, sink: str, code_file: str, line: int, function: str, source: str,
        statement: str,
    ) -> None:  # fmt: skip
        path = self._relative(code_file)
        key = (rule, path, line)
        finding = self.findings.get(key)
        if finding is None:
            finding = Finding(rule, sink, path, line, function, source, statement)
            finding.suppressed = _allowed(code_file, line)
            finding.baselined = finding.fingerprint in self.baseline
            self.findings[key] = finding
        if self.test is not None:
            if self.test not in finding.tests:
                finding.tests.append(self.test)
            if finding.attack:
                if self.expect_attack:
                    finding.expected = True
                else:
                    finding.unexpected = True
            if finding not in self.in_test:
                self.in_test.append(finding)

    def _relative(self, code_file: str) -> str:
        # String operations only: no file-system call (each would be guarded, and judged).
        absolute = os.path.abspath(code_file)
        root = str(self.root)
        if absolute.startswith(root + os.sep):
            return absolute[len(root) + 1 :].replace(os.sep, "/")
        return code_file

    # --- tests ----------------------------------------------------------------------------

    def _watch(self) -> None:
        import rasp
        from rasp import guard, report, sinks

        config = guard.active_config()
        if not sinks._active or config.mode is not rasp.Mode.MONITOR or config.alert_window:
            # A test unprotected or reconfigured the agent: the next one is watched again.
            rasp.protect(rasp.Config(mode=rasp.Mode.MONITOR, alert_window=0))
        guard.flow_observer = self._on_flow
        if self._on_incident not in report.listeners:
            report.listeners.append(self._on_incident)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        self._watch()
        self.test = item.nodeid
        self.expect_attack = item.get_closest_marker("rasp_expect_attack") is not None
        self.in_test = []
        yield
        self.test = None
        self.expect_attack = False

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if call.when == "setup":
            return
        failing = [f for f in self.in_test if self._fails(f)]
        self.in_test = [f for f in self.in_test if f not in failing]
        if failing and report.outcome != "failed":
            report.outcome = "failed"
            report.longrepr = "\n".join(
                ["rasp found injection flaws while this test ran:"]
                + [f"  {finding.describe()}" for finding in _without_shadowed(failing)]
            )

    def _fails(self, finding: Finding) -> bool:
        if finding.suppressed is not None or (finding.attack and self.expect_attack):
            return False
        if self.fail_on == "none":
            return False
        if self.fail_on == "attack":
            return finding.attack
        if self.fail_on == "new":
            return not finding.baselined
        return True

    # --- reports --------------------------------------------------------------------------

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        findings = sorted(self.findings.values(), key=lambda f: (f.path, f.line, f.rule))
        terminalreporter.section("rasp findings")
        if not findings:
            terminalreporter.write_line("none: no request input reached a sink unsafely")
            return
        for finding in findings:
            state = (
                f"suppressed: {finding.suppressed}" if finding.suppressed is not None
                else "expected attack" if finding.excused
                else "baselined" if finding.baselined
                else "NEW" if self.baseline else "found"
            )  # fmt: skip
            terminalreporter.write_line(f"{finding.path}:{finding.line}: {finding.rule} [{state}]")
            terminalreporter.write_line(
                f"    {finding.function}() -> {finding.sink}, input {finding.input_source}"
            )
            terminalreporter.write_line(f"    {finding.statement[:160]}")
            tests = finding.tests
            if tests:
                more = f" (+{len(tests) - 1} more)" if len(tests) > 1 else ""
                terminalreporter.write_line(f"    first seen in {tests[0]}{more}")
        counts = sum(1 for f in findings if f.suppressed is None and not f.excused)
        terminalreporter.write_line(f"{counts} code site(s) with findings, {len(findings)} in all")

    def _sarif(self) -> dict[str, Any]:
        findings = sorted(self.findings.values(), key=lambda f: (f.path, f.line, f.rule))
        rules = sorted({finding.rule for finding in findings})
        results = []
        for finding in findings:
            result: dict[str, Any] = {
                "ruleId": finding.rule,
                "ruleIndex": rules.index(finding.rule),
                "level": "error",
                "message": {"text": finding.describe()},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": finding.path, "uriBaseId": "%SRCROOT%"},
                            "region": {"startLine": max(1, finding.line)},
                        }
                    }
                ],
                "partialFingerprints": {"raspFinding/v1": finding.fingerprint},
                "properties": {
                    "sink": finding.sink,
                    "inputSource": finding.input_source,
                    "tests": finding.tests,
                },
            }
            if self.baseline:
                result["baselineState"] = "unchanged" if finding.baselined else "new"
            if finding.suppressed is not None:
                result["suppressions"] = [{"kind": "inSource", "justification": finding.suppressed}]
            results.append(result)
        return {
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "rasp",
                            "version": __version__,
                            "informationUri": "https://pypi.org/project/confine-rasp/",
                            "rules": [
                                {
                                    "id": rule,
                                    "shortDescription": {"text": RULES.get(rule, rule)},
                                    "defaultConfiguration": {"level": "error"},
                                }
                                for rule in rules
                            ],
                        }
                    },
                    "originalUriBaseIds": {"%SRCROOT%": {"uri": self.root.as_uri() + "/"}},
                    "results": results,
                }
            ],
        }

    def _baseline_document(self) -> dict[str, Any]:
        today = datetime.date.today().isoformat()
        return {
            "version": 1,
            "findings": [
                {
                    "fingerprint": finding.fingerprint,
                    "rule": finding.rule,
                    "location": f"{finding.path}:{finding.line}",
                    "reason": f"accepted {today}",
                }
                for finding in sorted(self.findings.values(), key=lambda f: (f.path, f.line))
                if finding.suppressed is None and not finding.excused
            ],
        }

    @staticmethod
    def _load_baseline(path: object) -> set[str]:
        if not path:
            return set()
        try:
            document = json.loads(Path(str(path)).read_text())
            return {str(entry["fingerprint"]) for entry in document["findings"]}
        except (OSError, ValueError, KeyError, TypeError) as error:
            message = f"--rasp-baseline={path}: not a rasp baseline ({error})"
            raise pytest.UsageError(message) from None


def _without_shadowed(findings: list[Finding]) -> list[Finding]:
    """A flow at the line where the same test's attack was found says nothing more."""
    attacked = {(f.path, f.line) for f in findings if f.attack}
    return [f for f in findings if f.attack or (f.path, f.line) not in attacked]


@contextlib.contextmanager
def _agents_own(context: Any) -> Iterator[None]:
    """The calls made meanwhile are the agent's own: not judged, not observed."""
    if context is None:
        yield
        return
    context.suppressed += 1
    try:
        yield
    finally:
        context.suppressed -= 1


def _allowed(code_file: str, line: int) -> str | None:
    text = linecache.getline(code_file, line)
    at = text.find(_ALLOW)
    if at < 0:
        return None
    return text[at + len(_ALLOW) :].strip() or "allowed in the code"


def _flow(
    family: str, sink: Any, payload: object, inputs: list[Any], sanitized: set[str] = _NOTHING
) -> tuple[str, str] | None:
    """The input that reached ``payload`` unsafely, and the statement to show."""
    values = [
        user_input for user_input in inputs
        if len(user_input.value) >= _MIN_FLOW and not user_input.value.isdigit()
    ]  # fmt: skip
    if not values:
        return None
    if family == "sql":
        return _sql_flow(sink, str(payload), values)
    if family == "shell":
        from rasp.detectors.shell import shell_strings

        lines = shell_strings(payload)  # type: ignore[arg-type]
        for user_input in values:
            if any(user_input.value in line for line in lines):
                return user_input.label, lines[0][:500]
        return None
    if family == "path":
        text = ""
        if isinstance(payload, (str, bytes, os.PathLike)):
            text = os.fsdecode(os.fspath(payload))
        if text in sanitized:
            return None
        for user_input in values:
            if not _route_segment(user_input) and _at_segment(text, user_input.value):
                return user_input.label, text[:500]
        return None
    if family == "url":
        from rasp import outbound
        from rasp.detectors.ssrf import contributes

        host = str(payload)
        path = outbound.requested_path(host, outbound.REQUESTED.get())
        for user_input in values:
            # In the path or query of the URL the app asked for: not the host's source.
            if contributes(host, user_input.value) and not outbound.placed_by_app(
                user_input, values, path
            ):
                return user_input.label, host
    return None


def _in_constants(frame: Any, value: str) -> bool:
    """Is ``value`` part of the calling function's own text, a string constant of its code
    (``"... WHERE status = 'active' AND name = ?"``)? Then its presence in the call is the
    code's doing, not the input's. (An f-string's constant parts hold only the text around
    the value.)"""
    return any(isinstance(c, str) and value in c for c in frame.f_code.co_consts)


def _route_segment(user_input: Any) -> bool:
    """A segment of the URL's path by position (``path.1``): a fixed part of most routes
    (``/report``), not a value the user typed; named route parameters still count."""
    return bool(user_input.source == "path" and user_input.key.rstrip(".").isdigit())


def _at_segment(text: str, value: str) -> bool:
    """Does ``value`` occur in the path ``text`` as (the start of) a whole segment: after a
    separator or at the start, before a separator, a dot or the end? A folder of the
    project whose name merely contains the value does not count."""
    at = text.find(value)
    while at >= 0:
        end = at + len(value)
        if (at == 0 or text[at - 1] in "/\\") and (end == len(text) or text[end] in "/\\."):
            return True
        at = text.find(value, at + 1)
    return False


def _sql_flow(sink: Any, text: str, values: list[Any]) -> tuple[str, str] | None:
    from rasp.detectors import sql as sql_detector
    from rasp.lexers.sql import Dialect, TokenKind
    from rasp.lexers.sql_regions import scan

    dialect = sink.dialect or Dialect.GENERIC
    regions = None
    for user_input in values:
        value = user_input.value
        at = text.find(value)
        while at >= 0:
            if regions is None:
                regions = scan(text, dialect)
            if _inside_string(regions, at, at + len(value), TokenKind.STRING):
                return user_input.label, sql_detector.redact(text[:4000], dialect)
            at = text.find(value, at + 1)
    return None


def _inside_string(regions: Any, start: int, end: int, string_kind: Any) -> bool:
    for region_start, region_end, kind in zip(
        regions.starts, regions.ends, regions.kinds, strict=True
    ):
        if region_start > start:
            return False
        if kind == string_kind and region_start < start and end <= region_end:
            return True
    return False
