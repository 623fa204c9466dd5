"""Files and folders written by the project are complete or absent."""

import os
import stat

import pytest

from multitask_bert.atomic import atomic_file, atomic_folder, move_into_place, same_file


def test_file_replaced_only_when_complete(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(path) as f:
        f.write("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]
    with atomic_file(path) as f:
        f.write("new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["out.txt"]


def test_partial_file_kept_on_request_and_named(tmp_path):
    path = tmp_path / "out.txt"
    with pytest.raises(RuntimeError) as err, atomic_file(path, keep_partial=True) as f:
        f.write("row 1\n")
        raise RuntimeError("stopped")
    assert not path.exists()
    (partial,) = [p for p in tmp_path.iterdir()]
    assert partial.read_text() == "row 1\n" and str(partial) in "".join(err.value.__notes__)


def test_write_through_symlink_keeps_the_link(tmp_path):
    target, link = tmp_path / "real.txt", tmp_path / "link.txt"
    target.write_text("old")
    link.symlink_to(target)
    with atomic_file(link) as f:
        f.write("new")
    assert link.is_symlink() and target.read_text() == "new"
    assert same_file(link, target) and not same_file(target, tmp_path / "other.txt")


def test_folder_takes_its_name_when_complete(tmp_path):
    path = tmp_path / "model"
    with pytest.raises(RuntimeError), atomic_folder(path) as tmp:
        (tmp / "config.json").write_text("{}")
        raise RuntimeError("killed mid-save")
    assert not path.exists() and os.listdir(tmp_path) == []
    with atomic_folder(path) as tmp:
        (tmp / "config.json").write_text("{}")
    assert os.listdir(path) == ["config.json"]
    with pytest.raises(FileExistsError):
        with atomic_folder(path):
            pass
    with atomic_folder(path, replace=True) as tmp:
        (tmp / "weights").write_text("w")
    assert os.listdir(path) == ["weights"] and os.listdir(tmp_path) == ["model"]


def test_written_folders_get_the_umasks_permissions(tmp_path, tiny_model, tiny_tokenizer):
    """mkdtemp makes the temporary folder 0700 and safetensors writes 0600: neither survives into what others load."""
    from multitask_bert.build import save_model

    old = os.umask(0o022)
    try:
        with atomic_folder(tmp_path / "release") as tmp:
            fd = os.open(tmp / "weights", os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
            (tmp / "sub").mkdir(mode=0o700)
        save_model(tiny_model, tiny_tokenizer, tmp_path / "model")
        staged = tmp_path / ".checkpoint-1.partial"  # how the trainer stages a checkpoint
        staged.mkdir(mode=0o700)
        os.close(os.open(staged / "model.safetensors", os.O_WRONLY | os.O_CREAT, 0o600))
        move_into_place(staged, tmp_path / "checkpoint-1")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "release").rglob("*")}
    assert stat.S_IMODE((tmp_path / "release").stat().st_mode) == 0o755
    assert modes == {"weights": 0o644, "sub": 0o755}
    assert stat.S_IMODE((tmp_path / "model" / "model.safetensors").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "checkpoint-1" / "model.safetensors").stat().st_mode) == 0o644
