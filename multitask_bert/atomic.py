"""Files and folders that are complete or absent: nothing the project writes is ever half-written under its final name.

Every file and folder the project writes goes through these helpers: the content is written under a temporary name in
the same folder (so the final rename stays on one file system and is atomic), flushed to disk, and only then takes
its final name. A crash, a kill or a full disk leaves the old content (if any) in place and at worst a temporary
`.NAME.partial-*` beside it, which no loader mistakes for the real thing.

    with atomic_file("predictions.jsonl", keep_partial=True) as f:   # streamed rows; a killed run keeps them
        for row in rows:
            f.write(row)
    with atomic_folder("outputs/model") as tmp:                       # a whole folder
        model.save_pretrained(tmp)
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def final_path(path: str | os.PathLike) -> Path:
    """Where a write to `path` must land: through a symlink to its target, so that the link stays a link."""
    return Path(os.path.realpath(path))


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two names are one file on disk (the same path, a symlink or a hard link to it)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return final_path(a) == final_path(b)


def check_keeps(out: str | os.PathLike, inputs: list[tuple[str, str | os.PathLike]], option: str = "--out") -> None:
    """An output folder that is one of a command's inputs, or holds one, would delete that input when the new folder
    takes its name: refused, naming both options (`inputs`: (option, path) pairs)."""
    target = final_path(out)
    for name, path in inputs:
        kept = final_path(path)
        if kept == target or target in kept.parents:
            raise ValueError(
                f"{option} {out} is {name} {path}, or a folder holding it: writing {option} would delete it; "
                f"choose another {option}"
            )


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a folder; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def partial_name(path: Path) -> str:
    """Prefix of the temporary name of a file or folder being written in place of `path`."""
    return f".{path.name}.partial-"


@contextmanager
def atomic_file(
    path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8", keep_partial: bool = False
) -> Iterator[IO]:
    """Write `path` all at once: the caller writes into a temporary file beside it (`f.name`), which replaces `path`
    when the block ends without an error. On an error the old `path` is untouched; the temporary file is removed,
    or, with `keep_partial`, kept (its name is in the raised error's notes) so that finished work survives."""
    target = final_path(path)
    if target.is_dir():
        raise IsADirectoryError(f"{path} is a folder; a file was expected")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=partial_name(target), dir=target.parent)
    os.close(fd)  # reopened by name, so that the file handed out says where it is (`f.name`)
    binary = "b" in mode
    try:
        with open(tmp, mode, encoding=None if binary else encoding, newline=None if binary else "") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if target.exists():  # the new file keeps the old one's permissions
            shutil.copymode(target, tmp)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
        _fsync_folder(target.parent)
    except BaseException as err:
        if keep_partial and os.path.exists(tmp):
            err.add_note(f"the rows written so far are kept in {tmp}")
        else:
            _remove(Path(tmp))
        raise


@contextmanager
def atomic_folder(path: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Write a folder all at once: the caller fills a temporary folder beside `path`, which takes the name `path`
    when the block ends without an error (the temporary folder is removed on an error). An existing `path` is
    replaced only with `replace=True`, and then only after the new folder is complete."""
    target = final_path(path)
    if target.exists() and not replace:
        raise FileExistsError(f"{path} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=partial_name(target), dir=target.parent))
    try:
        yield tmp
        move_into_place(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


def move_into_place(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Give the complete file or folder `source` the name `target` (same file system), replacing what is there: an
    old folder is moved aside, not deleted, until the new one holds its name (no instant without one of the two).
    It takes the permissions a plain write would have given it."""
    source, target = Path(source), Path(target)
    _plain_modes(source)
    old = None
    if target.is_dir() and not target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.rmdir(old)
        os.replace(target, old)
    elif source.is_dir() and (target.exists() or target.is_symlink()):
        target.unlink()  # a file where the folder goes: os.replace cannot put a folder over a file
    os.replace(source, target)
    _fsync_folder(target.parent)
    if old is not None:
        _remove(old)


def retire(path: str | os.PathLike) -> None:
    """Delete a folder so that it never shows half-deleted under its name: it is renamed to a hidden name first."""
    path = Path(path)
    if not path.exists():
        return
    hidden = Path(tempfile.mkdtemp(prefix=f".{path.name}.deleted-", dir=path.parent))
    os.rmdir(hidden)
    os.replace(path, hidden)
    _fsync_folder(path.parent)
    _remove(hidden)


@contextmanager
def atomic_contents(path: str | os.PathLike, last: str = "config.json") -> Iterator[Path]:
    """Write a set of files into a folder that also holds other things (checkpoints, logs), so that the folder holds
    `last` (the file a loader starts from) only when the whole set is there: the caller fills a temporary folder
    inside `path`; when the block ends without an error, the old `last` is removed, every entry moves in (a folder
    replacing its namesake whole) and the new `last` comes at the end. A crash in between leaves a folder without
    `last`, which no loader takes for a model; an error in the block leaves `path` untouched."""
    target = final_path(path)
    target.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=partial_name(target / "contents"), dir=target))
    try:
        yield tmp
        _fsync_tree(tmp)  # the contents reach the disk before any name says they are there
        (target / last).unlink(missing_ok=True)
        _fsync_folder(target)
        for entry in sorted(tmp.iterdir(), key=lambda p: p.name == last):
            move_into_place(entry, target / entry.name)
    finally:
        _remove(tmp)


def _plain_modes(path: Path) -> None:
    """Give a file or folder written aside, and what it holds, the permissions a plain write would have (the umask's):
    temporary folders are created 0700 and safetensors writes its files 0600, which would keep others on a shared
    machine from loading a model or a checkpoint."""
    mask = _umask()
    if path.is_symlink():
        return
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)
    for root, folders, files in os.walk(path):
        for name in folders:
            os.chmod(os.path.join(root, name), 0o777 & ~mask)
        for name in files:
            if not os.path.islink(os.path.join(root, name)):
                os.chmod(os.path.join(root, name), 0o666 & ~mask)


def _fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_folder(Path(root))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
