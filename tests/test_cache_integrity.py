"""The symbolic cache's entries are authenticated: what this harness did not write here is a miss."""

import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sympy

from harness import cache
from harness import store as harness_store

ROOT = Path(__file__).resolve().parent.parent
A = sympy.Symbol("a0", real=True)  # the symbol of the catalogue's closed forms, as a check asks
SIN = ["diff", ["f", "sympy.sin", ["s", "a0"]], ["s", "a0"]]  # the question: d/da0 sin(a0)
WRONG = ["*", ["i", "2"], ["f", "sympy.cos", ["s", "a0"]]]  # a well-formed wrong answer: 2*cos(a0)
SIN_CASE = "name: sin\ninputs: {x: {points: [0.5, 1.0, -2.0]}}\nexpr: sin(x)\nchecks: [grad]\n"


@pytest.fixture
def store(tmp_path):
    """The process's cache in a fresh folder (its key made), put back afterwards."""
    cache.use(tmp_path)
    assert cache.STORE.enabled()
    yield cache.STORE
    cache.use(Path(os.environ["HARNESS_CACHE"]))


def _text(question: list) -> str:
    return json.dumps(question, separators=(",", ":"))


def _sin_path(root: Path) -> Path:
    """Where the cache in `root` looks for sin's derivative, worked out here as the code does it."""
    return root / cache._fingerprint() / f"{hashlib.sha256(_text(SIN).encode()).hexdigest()}.json"


def _forgeries(tmp_path: Path) -> dict[str, bytes]:
    """The wrong answer, well-formed, in the entries a forger could write without this folder's key."""
    body = json.dumps({"question": _text(SIN), "answer": WRONG}, separators=(",", ":")).encode()
    elsewhere = cache.Store(tmp_path / "another-machine")
    assert elsewhere.enabled()
    return {"no MAC (format 1)": body, "another key's MAC": elsewhere.seal(_text(SIN), WRONG),
            "an empty MAC": b"\n" + body, "a MAC of zeros": b"0" * 64 + b"\n" + body}


def _sealed(store: cache.Store, body: bytes) -> bytes:
    """Any bytes as an entry with this store's own MAC: damage past the authentication."""
    return store._mac(body) + b"\n" + body


def _diff_sin(store: cache.Store) -> sympy.Expr:
    """sin's derivative through the cache, each call a miss (computed) or a hit (read)."""
    hits, misses = store.hits, store.misses
    d = cache.diff(sympy.sin(A), A)
    assert store.hits + store.misses == hits + misses + 1
    return d


# ---------------------------------------------------------------- forged entries


def test_a_forged_derivative_is_a_miss(store, tmp_path):
    path = _sin_path(tmp_path)
    assert path == store.path(_text(SIN))
    for name, forged in _forgeries(tmp_path).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(forged)
        misses = store.misses
        assert _diff_sin(store) == sympy.cos(A), name
        assert store.misses == misses + 1, name
        assert store._read(path, _text(SIN)) == sympy.cos(A)  # the miss put the right answer in its place
    path.write_bytes(store.seal(_text(SIN), WRONG))  # the same forgery with this folder's key...
    assert _diff_sin(store) == 2 * sympy.cos(A)  # ...is read: the forgeries were where the cache looks


def _check_sin(folder: Path) -> subprocess.Popen:
    """The sin case checked in a new process (no derivative in memory) with the cache in `folder`."""
    script = ("import sys\nfrom harness.cases import load_text\nfrom harness.run import Options, check_case\n"
              "(case,) = load_text(sys.argv[1], 'sin.yaml')\n"
              "print(' '.join(r.status for r in check_case(case, Options())))\n")
    return subprocess.Popen([sys.executable, "-c", script, SIN_CASE], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            env={**os.environ, "HARNESS_CACHE": str(folder)})


def test_a_forged_derivative_does_not_fail_a_correct_case(tmp_path):
    forgeries = _forgeries(tmp_path)
    entries = {"no MAC": forgeries["no MAC (format 1)"], "another key": forgeries["another key's MAC"],
               "sealed here": b""}
    runs = {}
    try:
        for name, forged in entries.items():
            folder = tmp_path / name.replace(" ", "-")
            here = cache.Store(folder)
            assert here.enabled()  # the folder's key, as the checking process will find it
            _sin_path(folder).parent.mkdir(parents=True)
            _sin_path(folder).write_bytes(forged or here.seal(_text(SIN), WRONG))
            runs[name] = _check_sin(folder)  # the three at once
        statuses = {name: run.communicate(timeout=300)[0].strip() for name, run in runs.items()}
    finally:
        for run in runs.values():
            run.kill()
    assert statuses == {"no MAC": "pass", "another key": "pass", "sealed here": "fail"}  # the last: the
    # forgery under the real key shows that the planted entry is the one a check reads


# ---------------------------------------------------------------- damaged entries


def _damage(store: cache.Store) -> dict[str, bytes]:
    """Entry files that are not a good entry for sin's derivative, by the kind of damage."""
    good = store.seal(_text(SIN), cache.encode(sympy.cos(A)))
    mac, _, body = good.partition(b"\n")
    deep = ('{"question":' + json.dumps(_text(SIN)) + ',"answer":' + '["+",' * 100_000 + '["s","a0"]'
            + "]" * 100_000 + "}").encode()

    def answer(value: object, padding: bytes = b"") -> bytes:
        return _sealed(store, json.dumps({"question": _text(SIN), "answer": value}).encode() + padding)

    return {
        "empty": b"", "truncated": good[: len(good) // 2], "no body": mac,
        "sealed, truncated": _sealed(store, body[:-9]),
        "not JSON": b"\x00\xff" * 50, "sealed, not JSON": _sealed(store, b"{not json"),
        "sealed, not UTF-8": _sealed(store, b'{"question":"\xff"}'),
        "bad MAC": bytes([mac[0] ^ 1]) + mac[1:] + b"\n" + body, "a MAC of the wrong length": mac[:-2] + b"\n" + body,
        "sealed, a list": _sealed(store, b"[1, 2]"),
        "sealed, no answer": _sealed(store, json.dumps({"question": _text(SIN)}).encode()),
        "sealed, another question": store.seal(_text(["diff", ["s", "a0"], ["s", "a0"]]), ["i", "1"]),
        "sealed, question not a string": _sealed(store, json.dumps({"question": SIN, "answer": ["i", "1"]}).encode()),
        "sealed, answer a string": answer("cos(a0)"), "sealed, number not a string": answer(["i", 5]),
        "sealed, symbol not a string": answer(["s", ["a0"]]), "sealed, empty node": answer([]),
        "sealed, boolean orders": answer(["op", "sin", [True], ["s", "a0"]]),
        "sealed, an order too high": answer(["op", "sin", [10**9], ["s", "a0"]]),
        "sealed, wrong arity": answer(["f", "sympy.cos", ["s", "a0"], ["s", "a0"], ["s", "a0"]]),
        "sealed, unknown function": answer(["f", "builtins.eval", ["s", "a0"]]),
        "sealed, unknown op": answer(["op", "os.system", [0], ["s", "a0"]]),
        "sealed, unknown tag": answer(["eval", "1"]),
        "sealed, unknown constant": answer(["c", "__import__"]),
        "sealed, huge integer": answer(["i", "9" * 100_000]), "sealed, huge rational": answer(["q", "1", "7" * 5000]),
        "sealed, deep nesting": _sealed(store, deep),
        "sealed, too large": answer(WRONG, b" " * harness_store.MAX_ENTRY_BYTES),  # valid JSON, its MAC good
    }


def test_damaged_entries_are_misses(store, tmp_path):
    path = _sin_path(tmp_path)
    path.parent.mkdir(parents=True)
    for name, data in _damage(store).items():
        path.write_bytes(data)
        misses = store.misses
        assert _diff_sin(store) == sympy.cos(A), name
        assert store.misses == misses + 1, name


def _not_a_file(kind: str, path: Path, store: cache.Store) -> None:
    good = path.with_name("elsewhere.json")
    good.write_bytes(store.seal(_text(SIN), WRONG))  # what a followed link would read
    if kind == "directory":
        path.mkdir()
        (path / "x.json").write_bytes(good.read_bytes())
    elif kind == "FIFO":
        os.mkfifo(path)  # opened, it would block until a writer came
    elif kind == "symlink":
        path.symlink_to(good)
    elif kind == "dangling symlink":
        path.symlink_to(path.with_name("nowhere.json"))
    elif kind == "symlink to a FIFO":
        os.mkfifo(path.with_name("fifo"))
        path.symlink_to(path.with_name("fifo"))


@pytest.mark.parametrize("kind", ["directory", "FIFO", "symlink", "dangling symlink", "symlink to a FIFO"])
def test_what_is_not_a_plain_file_is_a_miss_and_never_blocks(store, tmp_path, kind):
    path = _sin_path(tmp_path)
    path.parent.mkdir(parents=True)
    _not_a_file(kind, path, store)
    found = []
    reader = threading.Thread(target=lambda: found.append(_diff_sin(store)), daemon=True)
    reader.start()
    reader.join(30)
    assert not reader.is_alive(), "the read blocked"
    assert found == [sympy.cos(A)] and store.misses == 1
    assert not list(path.parent.glob("*.tmp"))  # a write that could not land left nothing behind


def test_entries_of_another_format_or_fingerprint_are_misses(store, tmp_path, monkeypatch):
    other = cache.Store(tmp_path)  # the same folder and key, another fingerprint
    other.fingerprint = "0" * 20
    assert other.enabled()
    path = _sin_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(other.seal(_text(SIN), WRONG))
    assert _diff_sin(store) == sympy.cos(A) and store.misses == 1
    fingerprint = cache._fingerprint()
    monkeypatch.setattr(cache, "FORMAT", 1)
    assert cache._fingerprint() != fingerprint  # format 1's entries are in a folder no longer read


def test_a_huge_integer_is_not_stored():
    with pytest.raises(cache.Uncachable):
        cache.encode(sympy.Integer(10) ** 5000 + A)
    assert cache.decode(cache.encode(sympy.Integer(10) ** 3000 * A)) == sympy.Integer(10) ** 3000 * A


# ---------------------------------------------------------------- the key


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o777])
def test_the_key_is_made_once_with_mode_0600(tmp_path, umask):
    folder = tmp_path / "new"
    folder.mkdir()
    old = os.umask(umask)  # neither the widest nor the narrowest changes the key's mode
    try:
        key = harness_store.load_key(folder)
    finally:
        os.umask(old)
    path = folder / harness_store.KEY_NAME
    status = os.lstat(path)
    assert key is not None and len(key) == harness_store.KEY_BYTES == status.st_size
    assert stat.S_ISREG(status.st_mode) and stat.S_IMODE(status.st_mode) == 0o600
    assert harness_store.load_key(folder) == key and path.read_bytes() == key
    assert sorted(p.name for p in folder.iterdir()) == [harness_store.KEY_NAME]  # no part file left


def test_processes_racing_to_make_the_key_agree_on_one(tmp_path, monkeypatch):
    folder = tmp_path / "raced"
    start = threading.Barrier(16)
    keys = []

    def make() -> None:
        start.wait()
        keys.append(harness_store.load_key(folder))

    threads = [threading.Thread(target=make) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 16 and keys[0] is not None and set(keys) == {keys[0]}
    monkeypatch.setattr(os.path, "lexists", lambda p: False)  # as if another process made it since the look
    assert harness_store.load_key(folder) == keys[0]
    assert sorted(p.name for p in folder.iterdir()) == [harness_store.KEY_NAME]


def _untrusted(kind: str, path: Path, monkeypatch) -> None:
    """A key file that is not to be trusted, of each kind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind.startswith("mode"):
        path.write_bytes(os.urandom(harness_store.KEY_BYTES))
        path.chmod(int(kind.split()[1], 8))
    elif kind.endswith("bytes"):
        path.write_bytes(os.urandom(int(kind.split()[0])))
        path.chmod(0o600)
    elif kind == "symlink":
        real = path.with_name("real-key")
        real.write_bytes(os.urandom(harness_store.KEY_BYTES))
        real.chmod(0o600)
        path.symlink_to(real)
    elif kind in ("directory", "FIFO"):
        path.mkdir() if kind == "directory" else os.mkfifo(path, 0o600)
    elif kind == "unreadable":
        path.write_bytes(os.urandom(harness_store.KEY_BYTES))
        path.chmod(0o600)
        real_open = os.open

        def refusing_open(name, *args, **kwargs):
            if Path(name) == path:
                raise PermissionError(13, "Permission denied", str(name))
            return real_open(name, *args, **kwargs)

        monkeypatch.setattr(os, "open", refusing_open)
    elif kind == "another owner's":
        if os.geteuid() != 0:
            pytest.skip("only root can give a file away")
        path.write_bytes(os.urandom(harness_store.KEY_BYTES))
        path.chmod(0o600)
        os.chown(path, 65534, 65534)


@pytest.mark.parametrize("kind", ["mode 644", "mode 640", "mode 604", "mode 660", "mode 606", "0 bytes", "31 bytes",
                                  "33 bytes", "symlink", "directory", "FIFO", "unreadable", "another owner's"])
def test_an_untrusted_key_turns_the_cache_off(tmp_path, monkeypatch, kind):
    path = tmp_path / harness_store.KEY_NAME
    _untrusted(kind, path, monkeypatch)
    cache.use(tmp_path)
    try:
        store = cache.STORE
        if path.is_file() and not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            store.key = path.read_bytes()  # one who can read the key forges with it...
            forged = store.seal(_text(SIN), WRONG)
            store.key = None
            _sin_path(tmp_path).parent.mkdir(parents=True)
            _sin_path(tmp_path).write_bytes(forged)  # ...but it is not trusted: the cache is off
        assert cache.diff(sympy.sin(A), A) == sympy.cos(A)
        assert cache.diff(sympy.sin(A), A) == sympy.cos(A)
        assert not store.enabled() and store.hits == store.misses == 0  # computed, not looked up
        assert not [p for p in tmp_path.rglob("*.json") if p != _sin_path(tmp_path)]  # nothing stored
    finally:
        cache.use(Path(os.environ["HARNESS_CACHE"]))


# ---------------------------------------------------------------- good entries


def test_an_entry_written_here_is_a_hit(store, tmp_path, monkeypatch):
    calls = []
    real_diff, real_limit = sympy.diff, sympy.limit
    monkeypatch.setattr(sympy, "diff", lambda *a, **k: calls.append("diff") or real_diff(*a, **k))
    monkeypatch.setattr(sympy, "limit", lambda *a, **k: calls.append("limit") or real_limit(*a, **k))
    assert cache.diff(sympy.sin(A), A) == sympy.cos(A) and calls == ["diff"]
    assert cache.limit(sympy.sin(A) / A, A, sympy.Integer(0)) == 1 and calls.count("limit") == 2  # each side
    assert cache.limit(1 / A, A, sympy.Integer(0)) is None  # no limit: stored as such
    assert store._read(_sin_path(tmp_path), _text(SIN)) == sympy.cos(A)
    calls.clear()
    cache.use(tmp_path)  # a new process, as it were: nothing in memory
    again = cache.STORE
    assert cache.diff(sympy.sin(A), A) == sympy.cos(A)
    assert sympy.srepr(cache.diff(sympy.sin(A), A)) == sympy.srepr(sympy.cos(A))
    assert cache.limit(sympy.sin(A) / A, A, sympy.Integer(0)) == 1
    assert cache.limit(1 / A, A, sympy.Integer(0)) is None
    assert calls == [] and again.hits == 4 and again.misses == 0  # every answer read from its file
