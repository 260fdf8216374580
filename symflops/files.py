"""Files the command line writes: each path is checked before any work is done, and a
file is written whole or not at all (a temporary file in the same folder, then renamed).

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_text(check_output(str(folder / "out.md")), "# total\\n").read_text()
'# total\\n'
>>> check_output(str(folder))
Traceback (most recent call last):
...
symflops.errors.SymflopsError: --output: ... is a folder, not a file; fix: ...
>>> plot_path("scaling").name, plot_path("scaling.svg").name
('scaling.png', 'scaling.svg')
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from symflops.errors import SymflopsError

__all__ = ["PLOT_SUFFIXES", "check_output", "plot_path", "write_text", "write_with"]

#: the plot formats ``--plot`` writes, by file suffix (no suffix: ``.png`` is added)
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def check_output(text: str, flag: str = "--output", make_parents: bool = False) -> Path:
    """The path ``text`` as a file that can be written, or one error naming it and the fix.

    ``make_parents`` creates missing folders (``symflops doc --output docs/formulas.md``)."""
    if not text.strip():
        raise SymflopsError(f"{flag}: the path is empty", fix=f"give a file name, e.g. "
                            f"{flag} out.md, or leave {flag} out to print to stdout")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise SymflopsError(f"{flag}: the path contains a control character (a newline or "
                            "a tab, often a pasting slip)", values={"path": repr(text)},
                            fix="give the file name on one line, without control characters")
    path = Path(text)
    try:
        if path.is_dir():
            raise SymflopsError(f"{flag}: {text} is a folder, not a file",
                                fix=f"name a file inside it, e.g. {path / 'out.md'}")
        if path.suffix == ".py" and path.exists():
            raise SymflopsError(f"{flag}: {text} is Python source; it is not overwritten",
                                fix="write the output to a .md, .tex, .json or .txt file")
        parent = path.parent
        if make_parents:  # created when the file is written, not now: a command that
            parent = next(p for p in (parent, *parent.parents) if p.exists())  # fails
        if not parent.exists():                                       # creates nothing
            raise SymflopsError(f"{flag}: the folder {parent} does not exist",
                                values={"path": text},
                                fix=f"create it first (mkdir -p {parent}) or write elsewhere")
        if not parent.is_dir():
            raise SymflopsError(f"{flag}: {parent} is a file, not a folder",
                                values={"path": text}, fix="write into an existing folder")
    except OSError as e:
        raise _cannot_write(flag, text, e) from None
    return path


def plot_path(text: str, flag: str = "--plot", make_parents: bool = False) -> Path:
    """The file ``--plot`` writes: its suffix must be one of :data:`PLOT_SUFFIXES`; a name
    without a suffix gets ``.png`` (and the message names the real path)."""
    path = check_output(text, flag, make_parents)
    suffix = path.suffix.lower()
    if not suffix:
        return check_output(text + ".png", flag, make_parents)
    if suffix not in PLOT_SUFFIXES:
        raise SymflopsError(f"{flag}: cannot write a {suffix} plot", values={"path": text},
                            fix="end the file name with " + ", ".join(PLOT_SUFFIXES[:-1])
                                + " or " + PLOT_SUFFIXES[-1])
    return path


def write_with(path: Path, save: Callable[[Path], object], flag: str = "--output") -> Path:
    """Call ``save(tmp)`` on a temporary file beside ``path`` (same suffix), then rename it
    to ``path``: a failure leaves no half-written file and the old one unchanged."""
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # check_output(make_parents=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                    suffix=path.suffix or ".tmp")
        os.close(fd)
        tmp = Path(name)
        save(tmp)
        _set_mode(tmp, path)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise _cannot_write(flag, str(path), e) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
    return path


def write_text(path: Path, text: str, flag: str = "--output") -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole, through :func:`write_with`."""
    return write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), flag)


def _set_mode(tmp: Path, path: Path) -> None:
    """Give the new file the mode the old one had, or the umask's default for a new file
    (``mkstemp`` makes it private)."""
    if path.exists():
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        return
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)


def _cannot_write(flag: str, text: str, e: OSError) -> SymflopsError:
    reason = e.strerror or type(e).__name__
    return SymflopsError(f"{flag}: cannot write {text}: {reason}",
                         fix="choose a path in a folder you can write to")
