"""File sinks: a path that climbs out, or an absolute user path, is never touched."""

from __future__ import annotations

import builtins
import io
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from serving import serving

import rasp
from rasp import AttackBlocked


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``base/`` with honest files, and ``secret/`` beside it, out of reach."""
    base = tmp_path / "base"
    (base / "docs").mkdir(parents=True)
    (base / "report-2024.pdf").write_text("report")
    (base / "my..file.txt").write_text("dots")
    (base / "docs" / "a.txt").write_text("a")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.txt").write_text("s3cret")
    return base


def test_the_chokepoints_are_patched(protected: rasp.Config) -> None:
    installed = set(rasp.sinks.installed())
    assert {"builtins.open", "io.open", "os.open", "os.listdir", "os.stat", "os.remove",
            "os.rename", "shutil.rmtree", "shutil.copyfile"} <= installed  # fmt: skip


def test_unprotect_puts_open_back() -> None:
    original = builtins.open
    rasp.protect(rasp.Config())
    assert builtins.open is not original and io.open is not original
    rasp.unprotect()
    assert builtins.open is original and io.open is original


ATTACKS: list[tuple[str, Callable[[Path, str], Any]]] = [
    ("open", lambda base, name: open(os.path.join(base, name)).read()),
    ("io.open", lambda base, name: io.open(os.path.join(base, name)).read()),  # noqa: UP020 - patched apart
    ("open-bytes", lambda base, name: open(os.fsencode(os.path.join(base, name))).read()),
    ("pathlib.read_text", lambda base, name: (base / name).read_text()),
    ("pathlib.write_text", lambda base, name: (base / name).write_text("x")),
    ("os.open", lambda base, name: os.open(os.path.join(base, name), os.O_RDONLY)),
    ("os.listdir", lambda base, name: os.listdir(os.path.join(base, name))),
    ("os.scandir", lambda base, name: list(os.scandir(os.path.join(base, name)))),
    ("os.stat", lambda base, name: os.stat(os.path.join(base, name))),
    ("os.path.exists", lambda base, name: os.path.exists(os.path.join(base, name))),
    ("os.remove", lambda base, name: os.remove(os.path.join(base, name))),
    ("os.rename", lambda base, name: os.rename(os.path.join(base, name), base / "x")),
    ("shutil.copyfile", lambda base, name: shutil.copyfile(os.path.join(base, name), base / "c")),
    ("shutil.rmtree", lambda base, name: shutil.rmtree(os.path.join(base, name))),
    ("shutil.move", lambda base, name: shutil.move(os.path.join(base, name), base / "m")),
    ("os.makedirs", lambda base, name: os.makedirs(os.path.join(base, name, "new"))),
]


@pytest.mark.parametrize(("call"), [c for _, c in ATTACKS], ids=[n for n, _ in ATTACKS])
@pytest.mark.parametrize("name", ["../secret/key.txt", "../secret", "docs/../../secret"])
def test_traversal_is_blocked_and_nothing_is_touched(
    protected: rasp.Config, tree: Path, call: Callable[[Path, str], Any], name: str
) -> None:
    secret = tree.parent / "secret"
    with serving(file=name), pytest.raises(AttackBlocked) as caught:
        call(tree, name)
    assert caught.value.incident.kind.value == "path_traversal"
    assert caught.value.incident.input_source == "query.file"
    assert (secret / "key.txt").read_text() == "s3cret"
    assert sorted(p.name for p in secret.iterdir()) == ["key.txt"]


def test_an_absolute_user_path_is_blocked(protected: rasp.Config, tree: Path) -> None:
    target = str(tree.parent / "secret" / "key.txt")
    with serving(file=target), pytest.raises(AttackBlocked) as caught:
        open(os.path.join(tree, target)).read()  # join drops the base: the user's path
    assert caught.value.incident.reason


@pytest.mark.parametrize("name", ["report-2024.pdf", "my..file.txt", "docs/a.txt",
                                  "docs/../report-2024.pdf", "./docs/a.txt"])  # fmt: skip
def test_honest_names_are_read(protected: rasp.Config, tree: Path, name: str) -> None:
    with serving(file=name):
        with open(tree / name) as handle:
            assert handle.read()
        assert (tree / name).exists()
        assert os.stat(os.path.join(tree, name)).st_size > 0


def test_descriptors_and_outside_requests_are_not_judged(
    protected: rasp.Config, tree: Path
) -> None:
    secret = tree / ".." / "secret" / "key.txt"
    with open(secret) as handle:  # no request: the app's own business
        assert handle.read() == "s3cret"
    fd = os.open(tree / "report-2024.pdf", os.O_RDONLY)
    try:
        with serving(file="../secret/key.txt"):
            assert os.stat(fd).st_size == 6
            with open(fd, closefd=False) as handle:
                assert handle.read() == "report"
    finally:
        os.close(fd)


def test_the_app_error_is_its_own(protected: rasp.Config, tree: Path) -> None:
    with serving(file="nothing.txt"), pytest.raises(FileNotFoundError):
        open(tree / "nothing.txt")
    with serving(file="x"), pytest.raises(TypeError):
        open()  # type: ignore[call-overload]
