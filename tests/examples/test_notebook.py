"""examples/quickstart.ipynb runs in a real Jupyter kernel, shows its pictures and keeps its progress clean (issue 14.4)."""

from __future__ import annotations

import importlib

import os

import pytest

nbformat = importlib.import_module("nbformat")
nbclient = importlib.import_module("nbclient")
importlib.import_module("ipykernel")

NOTEBOOK = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "quickstart.ipynb")


def test_quickstart_notebook_runs_in_a_kernel(tmp_path, monkeypatch):
    monkeypatch.delenv("EASYSSL_PROGRESS", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:  # a shorter budget than the notebook's, for the test
        cell.source = cell.source.replace('"max_time": 20', '"max_time": 6')
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on any error
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    streams = "".join(out.get("text", "") for cell in code for out in cell.outputs if out.output_type == "stream")
    assert "IProgress" not in streams  # no widget warnings without ipywidgets
    assert "kNN top-1" in streams
    pictures = [cell for cell in code if any("image/png" in out.get("data", {}) for out in cell.outputs)]
    assert len(pictures) >= 3  # the loss curve, the map and the neighbours show in the notebook
    results = [out["data"]["text/plain"] for cell in code for out in cell.outputs if out.output_type == "execute_result"]
    assert any("metrics.csv" in text and "training_curve.png" in text for text in results)
