"""Progress suits where it goes (issue 14.4/14.5): tqdm bars on a terminal, no widget without ipywidgets, no \\r in logs."""

from __future__ import annotations

import io
import sys

from easyssl.runtime import progress
from easyssl.runtime.progress import progress_bar, progress_mode


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_mode_follows_the_stream(monkeypatch):
    monkeypatch.delenv("EASYSSL_PROGRESS", raising=False)
    assert progress_mode(io.StringIO()) == "lines"
    assert progress_mode(_Tty()) == "terminal"
    monkeypatch.setenv("EASYSSL_PROGRESS", "notebook")
    assert progress_mode(io.StringIO()) == "notebook"


def test_in_a_kernel_without_ipywidgets_there_is_no_widget(monkeypatch):
    monkeypatch.delenv("EASYSSL_PROGRESS", raising=False)
    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setattr(progress.importlib.util, "find_spec", lambda name: None)
    assert progress_mode() == "notebook"
    bar = progress_bar(total=3, desc="x", file=io.StringIO())
    assert type(bar).__module__ == "tqdm.std"  # the text bar, never tqdm.notebook (which warns "IProgress not found")
    bar.close()


def test_a_log_gets_no_bar(monkeypatch):
    monkeypatch.delenv("EASYSSL_PROGRESS", raising=False)
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    for _ in progress_bar(range(5), desc="embedding"):
        pass
    assert err.getvalue() == ""
