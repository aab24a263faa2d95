"""Folder clean-up of failed commands: only what the failed block created goes, unless asked to keep it."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from envs.fileio import atomic_write, removed_on_failure


def test_a_failed_block_removes_the_folder_it_created_and_its_empty_parents(tmp_path):
    target = tmp_path / "runs" / "a"
    with pytest.raises(RuntimeError), removed_on_failure(target):
        atomic_write(target / "config.yaml", b"x: 1\n")
        raise RuntimeError("bad scene")
    assert list(tmp_path.iterdir()) == []
    with removed_on_failure(target):  # success keeps everything
        atomic_write(target / "config.yaml", b"x: 1\n")
    assert (target / "config.yaml").is_file()


def test_a_failed_block_in_an_existing_folder_removes_only_new_entries(tmp_path):
    (tmp_path / "mine.txt").write_text("kept")
    with pytest.raises(KeyboardInterrupt), removed_on_failure(tmp_path):
        (tmp_path / "store").mkdir()
        (tmp_path / "train.log").write_text("...")
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_keep_leaves_a_failed_block_s_output_in_place(tmp_path):
    target = tmp_path / "run"
    with (
        pytest.raises(ValueError),
        removed_on_failure(target, keep=lambda: (target / "checkpoints").exists()),
    ):
        (target / "checkpoints").mkdir(parents=True)
        raise ValueError("after the first checkpoint")
    assert (target / "checkpoints").is_dir()


def test_a_terminated_process_removes_what_its_block_created(tmp_path):
    target = tmp_path / "eval" / "run"
    code = (
        "import sys, time\n"
        "from envs.fileio import atomic_write, removed_on_failure\n"
        f"with removed_on_failure({str(target)!r}):\n"
        f"    atomic_write({str(target / 'config.yaml')!r}, b'x: 1\\n')\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready" and (target / "config.yaml").is_file()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        proc.kill()
    assert list(tmp_path.iterdir()) == []
    before = signal.getsignal(signal.SIGTERM)
    with removed_on_failure(tmp_path / "x"):
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
