"""`python -m lib.keys new|revoke|list` against a keys file, Secret Manager (fake) and AWS (moto)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lib.keys import cli
from lib.keys.document import hash_key, parse_key_document
from tests.support.cloud import (
    FakeSecretManager,
    aws_current,
    create_aws_secret,
    moto_client,
    point_boto3_at_moto,
)
from tests.support.env import SECRETS
from tests.support.paths import ROOT

KEY_FORMAT = re.compile(r"sg_[A-Za-z0-9_-]{43}")


@dataclass
class Store:
    """One key store under test: its spec, the env a CLI needs, and its current document."""

    kind: str
    spec: str
    env: dict[str, str]
    raw: Callable[[], bytes]
    put: Callable[[bytes], None]  # write a document behind the CLI's back


def file_store(tmp_path: Path) -> Store:
    path = tmp_path / "keys.json"
    return Store("file", str(path), {}, path.read_bytes, path.write_bytes)


def gcp_store(fake: FakeSecretManager, credentials: Path, monkeypatch) -> Store:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials))
    name = f"keys-{uuid.uuid4().hex[:8]}"
    spec = fake.create(name)
    env = {"STREAMGATE_SECRETMANAGER_BASE_URL": fake.url}
    return Store(
        "gcp", spec, env, lambda: fake.latest(name), lambda d: fake.add(name, d)
    )


def aws_store(monkeypatch) -> Store:
    env = point_boto3_at_moto(monkeypatch)
    arn = create_aws_secret()

    def put(data: bytes) -> None:
        moto_client().put_secret_value(SecretId=arn, SecretString=data.decode())

    return Store("aws", arn, env, lambda: aws_current(arn), put)


@pytest.fixture(params=["file", "gcp", "aws"])
def store(request, tmp_path, fake_sm, service_account_file, monkeypatch) -> Store:
    if request.param == "file":
        return file_store(tmp_path)
    if request.param == "gcp":
        return gcp_store(fake_sm, service_account_file, monkeypatch)
    return aws_store(monkeypatch)


def run(store: Store, *argv: str) -> tuple[int, str]:
    """Run the CLI in-process; returns (exit status, stdout)."""
    out = io.StringIO()
    code = cli.main(["--keys", store.spec, *argv], env=store.env, out=out)
    return code, out.getvalue()


def new_key(store: Store, key_id: str, *models: str) -> str:
    code, out = run(
        store, "new", "--id", key_id, *(["--models", *models] if models else [])
    )
    assert code == 0
    key = out.strip()
    SECRETS.add(key)
    return key


def test_new_prints_the_key_once_and_stores_only_its_hash(store, capsys):
    key = new_key(store, "ci", "gemini-2.5-*", "gemini-2.0-flash")
    assert KEY_FORMAT.fullmatch(key)
    raw = store.raw()
    assert key.encode() not in raw
    assert json.loads(raw) == {
        "keys": [
            {
                "id": "ci",
                "sha256": hash_key(key),
                "models": ["gemini-2.5-*", "gemini-2.0-flash"],
                "disabled": False,
            }
        ]
    }
    err = capsys.readouterr().err
    assert "Created key 'ci'" in err and key not in err


def test_list_shows_ids_models_and_state_but_never_a_hash(store, capsys):
    new_key(store, "team-a")
    new_key(store, "limited", "gemini-2.5-*")
    assert run(store, "revoke", "--id", "team-a")[0] == 0
    code, out = run(store, "list")
    assert code == 0
    assert out.splitlines() == [
        "ID       STATE     MODELS",
        "team-a   disabled  *",
        "limited  active    gemini-2.5-*",
    ]
    for key in parse_key_document(store.raw()).keys:
        assert key.sha256 not in out + capsys.readouterr().err


def test_revoke_marks_the_key_disabled_and_keeps_it_for_audit(store, capsys):
    key = new_key(store, "leaver")
    assert run(store, "revoke", "--id", "leaver") == (0, "")
    ring = parse_key_document(store.raw())
    assert [(k.id, k.sha256, k.disabled) for k in ring.keys] == [
        ("leaver", hash_key(key), True)
    ]
    assert ring.find(key) is None
    before = store.raw()
    assert run(store, "revoke", "--id", "leaver") == (0, "")  # idempotent
    assert store.raw() == before
    assert "Revoked key 'leaver'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["new", "--id", "dup"], "'dup' is already a key; choose another id"),
        (["revoke", "--id", "ghost"], "no key with id 'ghost'"),
        (["new", "--id", "has space"], "keys[1].id must be 1-64 characters"),
    ],
)
def test_mistakes_exit_1_and_change_nothing(store, capsys, argv, message):
    new_key(store, "dup")
    before = store.raw()
    assert run(store, *argv) == (1, "")
    assert store.raw() == before
    assert f"error: {message}" in capsys.readouterr().err


def test_an_id_is_never_reused_even_after_revoke(store, capsys):
    new_key(store, "old")
    run(store, "revoke", "--id", "old")
    assert run(store, "new", "--id", "old") == (1, "")
    assert "'old' is already a disabled key" in capsys.readouterr().err


def test_a_malformed_document_in_the_store_is_never_overwritten(store, capsys):
    bad = b'{"keys": [{"id": "x", "sha256": "abc"}]}'
    store.put(bad)
    assert run(store, "new", "--id", "y") == (1, "")
    assert store.raw() == bad
    assert "keys[0].sha256 (x) is not 64 hex characters" in capsys.readouterr().err


def test_concurrent_runs_lose_no_key(store):
    ids = [f"k{i}" for i in range(6)]
    start = threading.Barrier(len(ids))
    codes: list[int] = []

    def create(key_id: str) -> None:
        start.wait(10)
        codes.append(run(store, "new", "--id", key_id)[0])

    threads = [threading.Thread(target=create, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert codes == [0] * len(ids)
    assert sorted(k.id for k in parse_key_document(store.raw()).keys) == ids


def test_the_gcp_cli_adds_one_base64_version_per_change(
    fake_sm, service_account_file, monkeypatch
):
    gcp = gcp_store(fake_sm, service_account_file, monkeypatch)
    name = gcp.spec.rsplit("/", 1)[1]
    new_key(gcp, "a")
    new_key(gcp, "b")
    run(gcp, "revoke", "--id", "a")
    versions = fake_sm.secrets[name].versions
    assert [len(parse_key_document(v).keys) for v in versions] == [1, 2, 2]
    assert fake_sm.secrets[name].annotations == {}  # the lease is released


def test_the_gcp_cli_refuses_to_write_to_a_pinned_version(
    fake_sm, service_account_file, monkeypatch, capsys
):
    gcp = gcp_store(fake_sm, service_account_file, monkeypatch)
    new_key(gcp, "a")
    gcp.spec += "/versions/1"
    assert run(gcp, "list")[0] == 0
    assert run(gcp, "new", "--id", "b") == (1, "")
    assert "pinned to version 1" in capsys.readouterr().err


def test_aws_versions_move_awscurrent_and_keep_awsprevious(monkeypatch):
    aws = aws_store(monkeypatch)
    new_key(aws, "a")
    new_key(aws, "b")
    stages = moto_client().describe_secret(SecretId=aws.spec)["VersionIdsToStages"]
    labels = sorted(s for v in stages.values() for s in v if s.startswith("AWS"))
    assert labels == ["AWSCURRENT", "AWSPREVIOUS"]
    assert [k.id for k in parse_key_document(aws.raw()).keys] == ["a", "b"]


COMMANDS = {
    "python -m lib.keys": [sys.executable, "-m", "lib.keys"],
    # The console script pyproject.toml declares (installed by `make venv`).
    "streamgate-keys": [str(Path(sys.executable).parent / "streamgate-keys")],
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_the_cli_runs_as_a_command_with_the_store_from_the_environment(
    tmp_path, command
):
    env = {"PATH": "/usr/bin:/bin", "STREAMGATE_KEYS": str(tmp_path / "keys.json")}

    def cli_run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *argv],
            check=False,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    created = cli_run("new", "--id", "cli", "--models", "gemini-2.5-flash")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    SECRETS.add(key)
    assert KEY_FORMAT.fullmatch(key) and key not in created.stderr
    listed = cli_run("list")
    assert listed.stdout.splitlines()[1].split() == [
        "cli",
        "active",
        "gemini-2.5-flash",
    ]
    assert cli_run("revoke", "--id", "cli").returncode == 0
    usage = cli_run("frobnicate")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr
    env.pop("STREAMGATE_KEYS")
    missing = cli_run("list")
    assert missing.returncode == 1
    assert "no key store: pass --keys SPEC or set STREAMGATE_KEYS" in missing.stderr
