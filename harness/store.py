"""Answers kept on disk across runs, authenticated: one small file per question, under a folder per
fingerprint (of whatever the answers depend on), each sealed with an HMAC under a secret key.

No SymPy here: harness.cache keeps SymPy's derivatives and limits on top of this, and `harness ops`
its listing (so that a second `harness ops` imports neither torch nor SymPy).

Authentication: an entry is the hex HMAC-SHA256 of the rest, a newline, then the JSON of the
question and the answer; the MAC covers the fingerprint too, under a secret key of 32 random bytes
made at first use: the file `hmac-key` in the folder, beside the fingerprints' subfolders (mode
0600, created whole or not at all). The MAC is checked (hmac.compare_digest) before anything is
parsed, so a file this harness did not write on this machine is a miss, however well-formed. So is
anything else that is not a good entry: no file, a directory, FIFO or symlink (never opened, never
followed), a file over MAX_ENTRY_BYTES, a bad MAC, JSON of another question. A key that cannot be
trusted (unreadable, the wrong size, a symlink, another owner's, readable by group or others) turns
the store off for the process: everything is computed, nothing stored.

The folder: `HARNESS_CACHE` (a path, or `off`), else `$XDG_CACHE_HOME/harness`, else
`~/.cache/harness`; `harness run --cache DIR` and `--no-cache` set it for one run.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
from pathlib import Path

KEY_NAME = "hmac-key"
KEY_BYTES = 32
MAX_ENTRY_BYTES = 4 << 20  # the largest real entry is tens of kB
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
MISS = object()  # what `read` gives for anything but an entry this store sealed


def default_folder() -> Path | None:
    setting = os.environ.get("HARNESS_CACHE")
    if setting is not None:
        return None if setting.lower() in ("off", "0", "no", "") else Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness"


def source_digest(*names: str) -> bytes:
    """A digest of the harness's own source files: each name a file or a package (every .py in it,
    a new one included), relative to the harness package."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in names:
        files = sorted((here / name).glob("*.py")) if (here / name).is_dir() else [here / name]
        for path in files:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.digest()


def read_regular(path: Path, limit: int) -> tuple[bytes, os.stat_result] | None:
    """The bytes of a plain file of at most `limit` bytes, with its status; None for anything else.
    A symlink is not followed, and a FIFO or device is never opened, so a read cannot hang."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        with os.fdopen(os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK), "rb") as f:
            status = os.fstat(f.fileno())  # the file opened, should it have been swapped since
            if not stat.S_ISREG(status.st_mode) or status.st_size > limit:
                return None
            data = f.read(limit + 1)
    except OSError:
        return None
    return (data, status) if len(data) <= limit else None


def _create_key(path: Path) -> None:
    """A new random key at `path`, unless another process puts one there first: written under a
    unique name, then hard-linked into place, so that it appears whole or not at all."""
    part = path.with_name(f"{path.name}.{secrets.token_hex(8)}.part")
    key = secrets.token_bytes(KEY_BYTES)
    try:
        _create_file(part, key)
        os.link(part, path)  # never replaces a key that is there
    except FileExistsError:
        pass  # another process's key won: it is the one used
    except OSError:  # a filesystem without hard links: in place (a racing reader may find it empty)
        with contextlib.suppress(FileExistsError):
            _create_file(path, key)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(part)


def _create_file(path: Path, data: bytes) -> None:
    """A new file (never an existing one, nor through a symlink), mode 0600, holding `data`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # whatever the umask
        f.write(data)


def load_key(folder: Path) -> bytes | None:
    """The secret key of the store in `folder`, made at first use; None when it cannot be trusted."""
    path = folder / KEY_NAME
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not os.path.lexists(path):
            _create_key(path)
    except OSError:
        return None
    found = read_regular(path, KEY_BYTES)
    if found is None:
        return None
    key, status = found
    foreign = hasattr(os, "geteuid") and status.st_uid != os.geteuid()
    return None if len(key) != KEY_BYTES or status.st_mode & 0o077 or foreign else key


class Store:
    """Answers on disk, one authenticated file per question, under the folder of a fingerprint."""

    def __init__(self, folder: Path | None, fingerprint: str) -> None:
        self.root = folder
        self.fingerprint = fingerprint if folder is not None else ""
        self.folder = folder / self.fingerprint if folder is not None else None
        self.hits = self.misses = 0
        self.key: bytes | None = None

    def enabled(self) -> bool:
        """Whether the store is on: at first use, read (or make) the key; if it cannot be trusted,
        the store is off from then on."""
        if self.key is None and self.root is not None:
            self.key = load_key(self.root)
            if self.key is None:
                self.root = self.folder = None
        return self.key is not None

    def path(self, question: str) -> Path:
        """Where the answer to a question (its compact JSON) is stored."""
        assert self.folder is not None
        return self.folder / f"{hashlib.sha256(question.encode()).hexdigest()}.json"

    def seal(self, question: str, answer: object) -> bytes:
        """An entry's bytes: the MAC, a newline, the JSON of the question (compact JSON) and answer."""
        body = json.dumps({"question": question, "answer": answer}, separators=(",", ":")).encode()
        return self._mac(body) + b"\n" + body

    def _mac(self, body: bytes) -> bytes:
        """The hex HMAC-SHA256 of an entry's body and this store's fingerprint, under the key."""
        assert self.key is not None
        return hmac.new(self.key, self.fingerprint.encode() + b"\n" + body, hashlib.sha256).hexdigest().encode()

    def read(self, path: Path, question: str) -> object:
        """The stored answer (JSON, as sealed), or MISS for anything but an entry this store sealed
        for this question."""
        found = read_regular(path, MAX_ENTRY_BYTES)
        if found is None:
            return MISS
        mac, _, body = found[0].partition(b"\n")
        if not hmac.compare_digest(mac, self._mac(body)):
            return MISS  # not written here (forged, foreign, old format) or damaged
        try:
            entry = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, nested past the parser's depth
            return MISS
        if not isinstance(entry, dict) or entry.get("question") != question or "answer" not in entry:
            return MISS
        return entry["answer"]

    def write(self, question: str, answer: object) -> None:
        """Seal and store an answer (left out when larger than an entry may be)."""
        entry = self.seal(question, answer)
        if len(entry) <= MAX_ENTRY_BYTES:
            write_file(self.path(question), entry)


def write_file(path: Path, data: bytes) -> None:
    """Write a file atomically (a temporary file, renamed); a read-only or full disk costs only speed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
