"""The README tells a new user how to install (issue 14 item 1) and shows the script guard (item 2)."""

from __future__ import annotations

import os
import re
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _read(name: str) -> str:
    with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
        return handle.read()


def test_distribution_name_is_not_the_unrelated_easyssl_and_the_readme_says_it():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        name = tomllib.load(handle)["project"]["name"]
    # "easyssl" on the package index is an unrelated OpenSSL utility; ours was checked free there (pip index versions)
    assert name != "easyssl" and re.fullmatch(r"[a-z0-9][a-z0-9-]*", name)
    readme = _read("README.md")
    assert f"**`{name}`**" in readme and "the import name stays `easyssl`" in readme


def test_readme_install_section_clones_then_installs_for_users_and_contributors():
    section = _read("README.md").split("## Install, run, test", 1)[1].split("\n## ", 1)[0]
    clone, cd = section.index("git clone"), section.index("\ncd ")
    user, dev = section.index("pip install -e .  "), section.index('pip install -e ".[dev]"')
    assert clone < cd < user < dev
    assert 'pip install -e ".[dev]"' in _read(".ci/run")  # CI installs what contributors install


def test_readme_first_snippet_is_guarded_for_spawned_workers():
    first = _read("README.md").split("```python", 1)[1].split("```", 1)[0]
    assert 'if __name__ == "__main__":' in first
    assert first.index('if __name__ == "__main__":') < first.index("train_embedding_model(")
    assert "## Scripts and worker processes" in _read("README.md")
