"""An unguarded script under the "spawn" start method never trains in a loader worker (issue 14 item 2).

Each test runs a real script with ``python`` in a subprocess, the start method set to spawn
and loader workers forced on, as a macOS or Windows user's script would run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_script(tmp_path, body: str, timeout: float = 300) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def test_unguarded_script_trains_once_in_process_with_one_warning(class_folder, tmp_path):
    result = run_script(tmp_path, f"""
        import multiprocessing
        multiprocessing.set_start_method("spawn", force=True)
        print("SCRIPT RUN", flush=True)
        import torch
        torch.set_num_threads(1)
        from easyssl import train_embedding_model, embed_images
        checkpoint = train_embedding_model(
            input_dir={class_folder!r}, checkpoint_dir="run",
            model={{"backbone": "resnet-18", "width": 0.125}}, collate={{"input_size": 32}},
            loader={{"batch_size": 4, "num_workers": 2}}, trainer={{"max_epochs": 1, "progress_bar": False, "device": "cpu"}},
        )
        print("TRAINED", flush=True)
        embeddings, labels, filenames = embed_images(input_dir={class_folder!r}, checkpoint=checkpoint, num_workers=2,
                                                     device="cpu", progress_bar=False)
        print("EMBEDDED", embeddings.shape, flush=True)
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    # the script ran once: no worker process imported it again (each would print SCRIPT RUN and train)
    assert result.stdout.count("SCRIPT RUN") == 1, result.stdout
    assert result.stdout.count("TRAINED") == 1 and "EMBEDDED (12," in result.stdout
    warnings = [line for line in result.stderr.splitlines() if "calls easyssl at module level" in line]
    assert len(warnings) == 1, result.stderr  # one warning for the whole script, training and embedding
    assert 'if __name__ == "__main__":' in warnings[0] and "spawn" in warnings[0]


def test_guarded_script_keeps_its_workers(tmp_path):
    result = run_script(tmp_path, """
        import multiprocessing
        from easyssl.runtime.spawn import safe_num_workers

        def main():
            print("WORKERS", safe_num_workers(2), flush=True)

        if __name__ == "__main__":
            multiprocessing.set_start_method("spawn", force=True)
            main()
    """, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WORKERS 2" in result.stdout and "module level" not in result.stderr


def test_a_process_re_running_the_script_refuses_to_train(tmp_path):
    # What a spawned worker does first: import the main script again as __mp_main__ (multiprocessing.spawn.import_main_path).
    (tmp_path / "user_script.py").write_text(
        "from easyssl.runtime.spawn import safe_num_workers\nprint('WORKERS', safe_num_workers(0), flush=True)\n"
    )
    result = run_script(tmp_path, f"""
        import multiprocessing.spawn
        multiprocessing.spawn.import_main_path({str(tmp_path / "user_script.py")!r})
    """, timeout=120)
    assert result.returncode != 0 and "WORKERS" not in result.stdout
    assert "UnguardedScriptError" in result.stderr and 'if __name__ == "__main__":' in result.stderr


def test_python_dash_m_package_is_not_rerun_so_it_keeps_its_workers(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "__main__.py").write_text(
        "import multiprocessing\nmultiprocessing.set_start_method('spawn', force=True)\n"
        "from easyssl.runtime.spawn import safe_num_workers\nprint('WORKERS', safe_num_workers(2), flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-m", "pkg"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WORKERS 2" in result.stdout and "module level" not in result.stderr


@pytest.mark.parametrize("method, expected", [("spawn", 0), ("forkserver", 0), ("fork", 2)])
def test_unguarded_call_falls_back_only_when_workers_rerun_the_script(tmp_path, method, expected):
    import multiprocessing

    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    result = run_script(tmp_path, f"""
        import multiprocessing
        multiprocessing.set_start_method({method!r}, force=True)
        from easyssl.runtime.spawn import safe_num_workers
        print("WORKERS", safe_num_workers(2), flush=True)
    """, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"WORKERS {expected}" in result.stdout
