"""The one writer of every file the doctor produces: `-o/--output`, `--html`, `--save-spans`.

What a user names is honoured as what it is, never replaced by something else:

* a regular file (or a symbolic link to one: the link is followed and stays a link) is written
  next to itself and renamed in, so Ctrl-C or a full disk never leaves a half-written report that a
  CI step would then upload; it keeps its mode, and its owner when the doctor may set it. A file
  with hard links, or in a directory the doctor cannot write, is rewritten in place instead;
* a character device (`/dev/null`, a terminal), a FIFO, and the doctor's own stdout or stderr
  (`/dev/stdout`, `/dev/fd/1`) are written through, never turned into regular files;
* a read-only file (no write bit), a block device, a directory, and any input of the same run
  (a scanned source file, a span file being read) are refused with one line and exit code 2.

`check_output` runs these checks before any work is done (`doctor trace` checks before it starts
the command); the write checks again. No temporary file is left behind, whatever fails.

`write_atomically` is the plain temporary-file-and-rename step under it, for any file the doctor
writes for itself (a cache): one routine, so none leaves a temporary file behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Mapping, Optional, Union

from otel_sqla_doctor.errors import UsageError

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class _Destination:
    kind: str  # "new" | "file" | "through" | "stream"
    path: Path  # where the bytes go (symbolic links followed)
    fd: int = -1  # for "stream": the doctor's own stdout (1) or stderr (2)
    info: Optional[os.stat_result] = None


def check_output(path: PathLike, *, what: str = "the report", inputs: Iterable[PathLike] = ()) -> None:
    """Raise UsageError (exit 2) now if `what` could not be written to `path` later."""
    destination = _destination(Path(path).expanduser(), what, inputs)
    if destination.kind == "new":
        parent = destination.path.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UsageError(f"cannot write {what} to {path}: the directory {_shown(parent)} is not writable")
    elif destination.kind in ("file", "through") and not os.access(destination.path, os.W_OK):
        if destination.kind == "through" or not os.access(destination.path.parent, os.W_OK | os.X_OK):
            raise UsageError(f"cannot write {what} to {path}: permission denied")


def check_outputs(outputs: Mapping[str, Optional[PathLike]], *, inputs: Iterable[PathLike] = ()) -> None:
    """`check_output` for each named output ({"the report": path, ...}); two outputs may not be one file."""
    inputs = list(inputs)
    seen: dict[tuple, str] = {}
    for what, path in outputs.items():
        if path is None:
            continue
        check_output(path, what=what, inputs=inputs)
        key = _identity(Path(path).expanduser())
        if key in seen and key[0] != "through":
            raise UsageError(f"{seen[key]} and {what} would both be written to {path}; give them different files")
        seen[key] = what


def write_report(path: PathLike, content: Union[str, bytes], *, what: str = "the report", inputs: Iterable[PathLike] = ()) -> None:
    """Write `content` (text is UTF-8) to `path` as described in the module docstring."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    write_output(path, lambda handle: handle.write(data), what=what, inputs=inputs)


def write_output(path: PathLike, produce: Callable[[BinaryIO], object], *, what: str = "the report", inputs: Iterable[PathLike] = ()) -> None:
    """Call `produce(binary_handle)` to fill `path`; any OSError becomes one UsageError line."""
    shown = Path(path).expanduser()
    destination = _destination(shown, what, inputs)
    try:
        if destination.kind == "stream":
            _write_stream(destination.fd, produce)
        elif destination.kind == "through":
            _write_through(destination.path, produce)
        else:
            _write_file(destination, produce)
    except OSError as exc:
        raise UsageError(f"cannot write {what} to {shown}: {_reason(exc)}") from None


# -- what the path is ------------------------------------------------------------------------------
def _destination(path: Path, what: str, inputs: Iterable[PathLike]) -> _Destination:
    try:
        info = os.stat(path)  # follows symbolic links, /dev/stdout and /proc/self/fd/* included
    except FileNotFoundError:
        target = Path(os.path.realpath(path))  # a dangling link: the file it names is created
        if not target.parent.is_dir():
            raise UsageError(f"cannot write {what} to {path}: the directory {_shown(path.parent if not path.is_symlink() else target.parent)} does not exist") from None
        return _Destination("new", target)
    except NotADirectoryError:
        raise UsageError(f"cannot write {what} to {path}: a part of the path is not a directory") from None
    except OSError as exc:
        raise UsageError(f"cannot write {what} to {path}: {_reason(exc)}") from None
    for item in inputs:
        try:
            source = os.stat(Path(item).expanduser())
        except OSError:
            continue
        if (source.st_dev, source.st_ino) == (info.st_dev, info.st_ino):
            raise UsageError(f"refusing to write {what} to {path}: it is an input of this run ({item}); choose another file")
    for fd in (1, 2):
        with contextlib.suppress(OSError, ValueError):
            own = os.fstat(fd)
            if (own.st_dev, own.st_ino) == (info.st_dev, info.st_ino) and not stat.S_ISDIR(info.st_mode):
                return _Destination("stream", path, fd=fd, info=info)
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise UsageError(f"cannot write {what} to {path}: it is a directory")
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return _Destination("through", path, info=info)
    if not stat.S_ISREG(mode):
        kind = "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
        raise UsageError(f"refusing to write {what} to {path}: it is {kind}; name a file, a FIFO or a terminal")
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise UsageError(f"refusing to write {what} to {path}: the file is read-only (mode {stat.S_IMODE(mode):04o})")
    return _Destination("file", Path(os.path.realpath(path)), info=info)


def _identity(path: Path) -> tuple:
    try:
        info = os.stat(path)
    except OSError:
        return ("new", os.path.realpath(path))
    if stat.S_ISCHR(info.st_mode) or stat.S_ISFIFO(info.st_mode):
        return ("through", info.st_dev, info.st_ino)
    return ("file", info.st_dev, info.st_ino)


# -- writing ---------------------------------------------------------------------------------------
def _write_stream(fd: int, produce: Callable[[BinaryIO], object]) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with os.fdopen(os.dup(fd), "wb") as handle:
        produce(handle)


def _write_through(path: Path, produce: Callable[[BinaryIO], object]) -> None:
    # No O_CREAT, no O_TRUNC, no rename: the device or FIFO stays what it is. (A FIFO's open waits
    # for a reader, as the shell's `>` does.)
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "wb") as handle:
        produce(handle)


def write_atomically(
    path: PathLike,
    produce: Callable[[BinaryIO], object],
    *,
    mode: Optional[int] = None,
    owner: Optional[tuple[int, int]] = None,
) -> None:
    """The one atomic writer: fill a temporary file beside `path` with `produce(binary_handle)`,
    then rename it over `path`. Readers see the old file or the new one, never a torn one; whatever
    fails (an OSError, a full disk, Ctrl-C), the temporary file is removed and `path` is unchanged.

    `mode` defaults to an ordinary new file's (0666 less the umask); `owner` is (uid, gid), set
    when allowed. Errors are raised as they are (callers turn them into messages, or ignore them
    for a cache)."""
    target = Path(path)
    fd, temporary = _temporary_beside(target)
    _fill_and_rename(fd, temporary, target, produce, mode, owner)


def _temporary_beside(target: Path) -> tuple[int, str]:
    return tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)


def _fill_and_rename(
    fd: int,
    temporary: str,
    target: Path,
    produce: Callable[[BinaryIO], object],
    mode: Optional[int],
    owner: Optional[tuple[int, int]],
) -> None:
    try:
        try:
            handle = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise
        with handle:
            produce(handle)
            handle.flush()
            if owner is not None and owner != (os.getuid(), os.getgid()):
                with contextlib.suppress(OSError):
                    os.fchown(handle.fileno(), *owner)
            os.fchmod(handle.fileno(), _new_file_mode() if mode is None else mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask  # mkstemp creates 0600; a new report is an ordinary file


def _write_file(destination: _Destination, produce: Callable[[BinaryIO], object]) -> None:
    target = destination.path
    existing = destination.info
    if existing is not None and existing.st_nlink > 1:
        _write_in_place(target, produce)  # renaming would split the hard links
        return
    try:
        fd, temporary = _temporary_beside(target)
    except OSError as exc:
        if existing is not None and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            _write_in_place(target, produce)  # a writable file in a directory we cannot write
            return
        raise
    if existing is None:
        _fill_and_rename(fd, temporary, target, produce, None, None)
    else:
        _fill_and_rename(fd, temporary, target, produce, stat.S_IMODE(existing.st_mode), (existing.st_uid, existing.st_gid))


def _write_in_place(target: Path, produce: Callable[[BinaryIO], object]) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_TRUNC | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "wb") as handle:
        produce(handle)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _shown(path: Path) -> str:
    return str(path) if str(path) else "."
