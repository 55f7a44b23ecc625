"""Atomic writes: an interrupted save leaves the previous file loadable and no partial
file that could be taken for a good one; disk-full and read-only get clear errors."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vaekit import runs
from vaekit.errors import ModelFileError, RunDirError
from vaekit.train import checkpoint
from vaekit.train.checkpoint import load_state, save_state


def test_exception_in_the_middle_of_a_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    save_state(path, {"w": torch.ones(3)}, {"epoch": 1})

    def broken_fsync(fd):
        raise OSError(errno.EIO, "injected I/O error")

    monkeypatch.setattr(checkpoint.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="injected"):
        save_state(path, {"w": torch.zeros(3)}, {"epoch": 2})
    monkeypatch.undo()
    tensors, state = load_state(path)
    assert state["epoch"] == 1 and torch.equal(tensors["w"], torch.ones(3))
    assert os.listdir(tmp_path) == ["c.safetensors"]


def test_writer_killed_mid_write_leaves_only_the_old_file_readable(tmp_path):
    path = tmp_path / "c.safetensors"
    save_state(path, {"w": torch.ones(3)}, {"epoch": 1})
    # a child process starts a large save and is killed before it can rename
    code = (
        "import os, torch, signal\n"
        "from vaekit.train import checkpoint\n"
        "real = checkpoint.os.replace\n"
        "def die(*a): os.kill(os.getpid(), signal.SIGKILL)\n"
        "checkpoint.os.replace = die\n"
        f"checkpoint.save_state({str(path)!r}, {{'w': torch.zeros(1_000_000)}}, {{'epoch': 2}})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    tensors, state = load_state(path)
    assert state["epoch"] == 1
    leftovers = [p for p in tmp_path.iterdir() if p.name != "c.safetensors"]
    assert leftovers and all(p.name.startswith(".") and p.name.endswith(".tmp") for p in leftovers)


def test_trainer_reports_a_full_disk_and_keeps_the_last_checkpoint(small_config, tmp_path, monkeypatch):
    from tests.fault.test_trainer_faults import make_trainer

    trainer = make_trainer(small_config, tmp_path / "run")
    trainer.fit()
    good = (tmp_path / "run" / "checkpoints" / "last.safetensors").read_bytes()
    small_config.train.epochs = 5
    again = make_trainer(small_config, tmp_path / "run")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("vaekit.train.trainer.save_state", full)
    with pytest.raises(RunDirError, match="No space left on device; the previous checkpoint is intact"):
        again.fit(resume=True)
    assert (tmp_path / "run" / "checkpoints" / "last.safetensors").read_bytes() == good


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only directories")
def test_read_only_run_directory_is_refused_before_training(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(RunDirError, match="not writable"):
        runs.prepare(ro / "run")


def test_unwritable_run_directory_is_refused_before_training(tmp_path, monkeypatch):
    """Works as root too: mkstemp fails as it does on a read-only mount."""

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(runs.tempfile, "mkstemp", read_only)
    with pytest.raises(RunDirError, match="not writable: Read-only file system"):
        runs.prepare(tmp_path / "run")


def test_too_little_disk_space_is_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(runs.shutil, "disk_usage", lambda p: type("U", (), {"free": 1024})())
    with pytest.raises(RunDirError, match="less than 50 MiB free"):
        runs.prepare(tmp_path / "run")


def test_truncated_and_foreign_files_are_detected(tmp_path):
    path = tmp_path / "c.safetensors"
    save_state(path, {"w": torch.ones(100)}, {"epoch": 1})
    raw = path.read_bytes()
    for cut in (0, 4, 20, len(raw) // 2, len(raw) - 1):
        path.write_bytes(raw[:cut])
        with pytest.raises(ModelFileError):
            load_state(path)
    from safetensors.torch import save_file

    save_file({"w": torch.ones(1)}, path)  # valid safetensors, not a vaekit checkpoint
    with pytest.raises(ModelFileError, match="not a vaekit checkpoint"):
        load_state(path)


def test_valid_files_whose_header_length_looks_like_a_pickle_load(tmp_path):
    """A safetensors header length with low byte 0x80 is not a pickle."""
    from safetensors.torch import load_file

    hits = 0
    for pad in range(64):
        path = tmp_path / f"c{pad}.safetensors"
        save_state(path, {"w": torch.zeros(3)}, {"pad": "x" * pad})
        first = path.read_bytes()[:1]
        hits += first == b"\x80"
        tensors, state = load_state(path)
        assert state["pad"] == "x" * pad and torch.equal(tensors["w"], load_file(path)["w"])
    assert hits > 0  # the case that used to be refused was met


def _run_dir(path, marker):
    path.mkdir()
    (path / "config.json").write_text('{"kind": "mlp"}')
    (path / "model.safetensors").write_text(marker)
    return path


def test_a_staged_run_that_fails_leaves_the_old_run_and_no_debris(tmp_path):
    old = _run_dir(tmp_path / "run", "old")
    with pytest.raises(KeyboardInterrupt):
        with runs.staged(old, overwrite=True) as new:
            (new / "model.safetensors").write_text("half")
            raise KeyboardInterrupt
    assert (old / "model.safetensors").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_staged_run_replaces_the_old_one_only_when_whole(tmp_path):
    old = _run_dir(tmp_path / "run", "old")
    with runs.staged(old, overwrite=True) as new:
        assert new != old and (old / "model.safetensors").read_text() == "old"
        (new / "model.safetensors").write_text("new")
    assert [p.name for p in old.iterdir()] == ["model.safetensors"] and (old / "model.safetensors").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    with runs.staged(tmp_path / "fresh" / "run") as new:  # parents are created; an empty target is fine
        (new / "a").write_text("a")
    assert (tmp_path / "fresh" / "run" / "a").read_text() == "a"


def test_staged_refuses_what_prepare_refuses(tmp_path):
    _run_dir(tmp_path / "run", "old")
    with pytest.raises(RunDirError, match="already exists; use --overwrite$"):
        with runs.staged(tmp_path / "run"):
            pass
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("x")
    with pytest.raises(RunDirError, match="does not look like a vaekit run directory"):
        with runs.staged(tmp_path / "notes", overwrite=True):
            pass
    (tmp_path / "afile").write_text("x")
    with pytest.raises(RunDirError, match="is a file, not a directory"):
        with runs.staged(tmp_path / "afile", overwrite=True):
            pass


def test_an_interrupted_staged_run_says_nothing_was_written(tmp_path):
    from vaekit.errors import TrainingInterrupted

    with pytest.raises(TrainingInterrupted, match="nothing was written and .*run is as it was"):
        with runs.staged(tmp_path / "run"):
            raise TrainingInterrupted("interrupted at epoch 1, step 3; checkpoint saved, continue with --resume")
    assert list(tmp_path.iterdir()) == []


def test_staged_writes_in_place_where_a_swap_is_impossible(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with runs.staged(Path(".")) as run:  # the working directory cannot be renamed away
        (run / "a").write_text("a")
    assert (tmp_path / "a").read_text() == "a"
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with runs.staged(tmp_path / "link") as run:
        (run / "b").write_text("b")
    assert (target / "b").read_text() == "b" and (tmp_path / "link").is_symlink()


def test_a_failed_swap_keeps_the_finished_run_and_says_where(tmp_path, monkeypatch):
    old = _run_dir(tmp_path / "run", "old")

    def no_rename(self, target):
        raise OSError(16, "Device or resource busy")

    with pytest.raises(RunDirError, match=r"run finished but could not replace .*run \(Device or resource busy\); "
                                          r"it is in .*\.run\.new-"):
        with runs.staged(old, overwrite=True) as new:
            (new / "model.safetensors").write_text("new")
            monkeypatch.setattr(Path, "rename", no_rename)
    monkeypatch.undo()
    assert (old / "model.safetensors").read_text() == "old"
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(".run.new-")]
    assert len(kept) == 1 and (kept[0] / "model.safetensors").read_text() == "new"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.old-")]


def _checkpoint(run):
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.safetensors").write_text("ckpt")


def test_a_replacing_run_that_fails_before_a_checkpoint_puts_the_old_run_back(tmp_path):
    from vaekit.errors import TrainingInterrupted

    old = _run_dir(tmp_path / "run", "old")
    with pytest.raises(RuntimeError, match="bad batch"):
        with runs.replacing(old, overwrite=True, log=lambda m: None) as new:
            assert new == old and not (new / "model.safetensors").exists()  # trains in place
            (new / "config.json").write_text("{}")
            raise RuntimeError("bad batch")
    assert (old / "model.safetensors").read_text() == "old" and (old / "config.json").read_text() == '{"kind": "mlp"}'
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    with pytest.raises(TrainingInterrupted, match=r"before the first checkpoint; .*run is as it was"):
        with runs.replacing(old, overwrite=True, log=lambda m: None):
            raise TrainingInterrupted("interrupted")
    assert (old / "model.safetensors").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_replacing_run_that_can_be_resumed_keeps_both_until_it_finishes(tmp_path):
    from vaekit.errors import TrainingInterrupted

    old = _run_dir(tmp_path / "run", "old")
    said = []
    with pytest.raises(TrainingInterrupted, match="continue with --resume"):
        with runs.replacing(old, overwrite=True, log=said.append) as new:
            _checkpoint(new)
            raise TrainingInterrupted("interrupted at epoch 1, step 3; checkpoint saved, continue with --resume")
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(".run.replaced-")]
    assert len(kept) == 1 and (kept[0] / "run" / "model.safetensors").read_text() == "old"
    assert (old / "checkpoints" / "last.safetensors").is_file()  # the new run, where --resume looks
    assert len(said) == 2 and all(str(kept[0] / "run") in m and "until this one finishes" in m for m in said)
    runs.drop_replaced(old)  # what a resumed run does once it has finished
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_replacing_run_that_finishes_removes_the_old_one(tmp_path):
    old = _run_dir(tmp_path / "run", "old")
    with runs.replacing(old, overwrite=True, log=lambda m: None) as new:
        (new / "model.safetensors").write_text("new")
    assert (old / "model.safetensors").read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["run"]
    with pytest.raises(RunDirError, match="already exists; use --overwrite or --resume$"):
        with runs.replacing(old, log=lambda m: None):
            pass
    with runs.replacing(tmp_path / "fresh", log=lambda m: None) as new:  # nothing to replace
        (new / "a").write_text("a")
    assert (tmp_path / "fresh" / "a").read_text() == "a"


def test_a_replacing_run_that_must_not_restore_keeps_the_old_run_aside(tmp_path):
    """Under torchrun an elastic restart looks for a checkpoint in --out to decide whether
    to resume: the old run's must not be put back there."""
    old = _run_dir(tmp_path / "run", "old")
    _checkpoint(old)
    said = []
    with pytest.raises(RuntimeError, match="rank failed"):
        with runs.replacing(old, overwrite=True, log=said.append, restore=False) as new:
            (new / "config.json").write_text("{}")
            raise RuntimeError("rank failed")
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(".run.replaced-")]
    assert len(kept) == 1 and (kept[0] / "run" / "model.safetensors").read_text() == "old"
    assert not (old / "checkpoints").exists()  # a restart starts the new run again
    assert str(kept[0] / "run") in said[0]  # said at the start, before anything could kill the run


def test_a_run_that_holds_the_working_directory_is_not_replaced(tmp_path, monkeypatch):
    old = _run_dir(tmp_path / "run", "old")
    (old / "sub").mkdir()
    monkeypatch.chdir(old / "sub")
    for replace in (lambda: runs.replacing(Path("../../run"), overwrite=True, log=lambda m: None),
                    lambda: runs.staged(Path("../../run"), overwrite=True)):
        with pytest.raises(RunDirError, match="the working directory is inside it"):
            with replace():
                pass
    assert (tmp_path / "run" / "model.safetensors").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_failed_restore_reports_the_original_error(tmp_path, monkeypatch):
    from vaekit.errors import TrainingInterrupted

    old = _run_dir(tmp_path / "run", "old")
    renames = []
    real = Path.rename

    def second_rename_fails(self, target):
        renames.append(target)
        if len(renames) == 2:
            raise OSError(5, "Input/output error")
        return real(self, target)

    said = []
    monkeypatch.setattr(Path, "rename", second_rename_fails)
    with pytest.raises(TrainingInterrupted, match="^interrupted$"):
        with runs.replacing(old, overwrite=True, log=said.append):
            raise TrainingInterrupted("interrupted")
    assert "could not move the run" in said[-1] and ".run.replaced-" in said[-1]
