"""Key sources by shape: a file, GCP Secret Manager (a fake of its REST API) and AWS (moto server)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lib.config import ConfigError
from lib.keys.base import KeyStoreError
from lib.keys.chooser import open_key_reader, open_key_store, store_kind
from lib.keys.document import ApiKey, KeySet, parse_key_document
from tests.support.cloud import (
    FakeSecretManager,
    aws_current,
    create_aws_secret,
    moto_client,
    point_boto3_at_moto,
)
from tests.support.gateway_process import free_port
from tests.support.paths import ROOT


def doc(*keys: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(keys)}).encode()


@pytest.fixture
def gcp_env(
    fake_sm: FakeSecretManager, service_account_file: Path, monkeypatch
) -> dict[str, str]:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(service_account_file))
    return {"STREAMGATE_SECRETMANAGER_BASE_URL": fake_sm.url}


@pytest.fixture
def aws(monkeypatch) -> dict[str, str]:
    return point_boto3_at_moto(monkeypatch)


ONE_KEY = doc({"id": "a", "sha256": "ab" * 32})


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("/etc/streamgate/keys.json", "file"),
        ("keys.json", "file"),
        ("projects/p/secrets/s", "gcp"),
        ("projects/my-proj/secrets/keys/versions/7", "gcp"),
        ("projects/p/secrets/s/versions/latest", "gcp"),
        ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:sg-keys-AbCdEf", "aws"),
        ("aws-secretsmanager://prod/streamgate/keys", "aws"),
    ],
)
def test_the_source_is_chosen_by_the_shape_of_the_spec(spec, kind):
    assert store_kind(spec) == kind


@pytest.mark.parametrize(
    "spec",
    ["projects/p/secrets/", "projects/p/secrets/s/versions", "projects/p/secrets/s/x"],
)
def test_a_malformed_secret_name_is_a_configuration_error(spec):
    with pytest.raises(ConfigError, match="projects/{project}/secrets/{secret}"):
        open_key_reader(spec)


def test_no_spec_fails_on_read_not_on_open():
    read = open_key_reader("")
    with pytest.raises(KeyStoreError, match="STREAMGATE_KEYS is not set"):
        read()


def test_a_missing_file_is_a_source_error(tmp_path):
    with pytest.raises(KeyStoreError, match="cannot read the keys file"):
        open_key_reader(str(tmp_path / "nope.json"))()


def test_the_file_backend_rewrites_the_file_by_rename_and_keeps_its_mode(tmp_path):
    path = tmp_path / "keys.json"
    path.write_bytes(ONE_KEY)
    path.chmod(0o640)
    inode = path.stat().st_ino
    backend = open_key_store(str(path))
    backend.update(lambda ring: ring)  # unchanged: no write
    assert path.stat().st_ino == inode
    backend.update(lambda ring: KeySet(()))
    assert parse_key_document(path.read_bytes()).keys == ()
    assert path.stat().st_ino != inode and path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.json", "keys.json.lock"]


def test_gcp_reads_latest_and_pinned_versions_with_an_access_token(fake_sm, gcp_env):
    name = fake_sm.create("read-me", ONE_KEY, doc())
    assert open_key_reader(name, gcp_env)() == doc()
    assert open_key_reader(f"{name}/versions/1", gcp_env)() == ONE_KEY
    assert fake_sm.auth_headers  # every call carried the service account's token
    assert all(h.startswith("Bearer ya29.fake-") for h in fake_sm.auth_headers)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("projects/test-project/secrets/absent", "HTTP 404 NOT_FOUND"),
        ("projects/test-project/secrets/read-me/versions/9", "HTTP 404 NOT_FOUND"),
    ],
)
def test_gcp_errors_name_the_status(fake_sm, gcp_env, spec, message):
    fake_sm.create("read-me", ONE_KEY)
    with pytest.raises(KeyStoreError, match=message):
        open_key_reader(spec, gcp_env)()


def test_gcp_unreachable_is_a_source_error(gcp_env):
    env = {"STREAMGATE_SECRETMANAGER_BASE_URL": f"http://127.0.0.1:{free_port()}"}
    with pytest.raises(
        KeyStoreError, match=r"cannot reach Secret Manager \(ConnectionError\)"
    ):
        open_key_reader("projects/p/secrets/s", env)()


def test_gcp_update_waits_for_a_live_lease_and_takes_over_an_expired_one(
    fake_sm, gcp_env
):
    name = fake_sm.create("leased", ONE_KEY)
    secret = fake_sm.secrets["leased"]
    secret.annotations["streamgate-keys-lock"] = f"crashed-run {time.time() - 1:.0f}"
    backend = open_key_store(name, gcp_env)
    backend.update(lambda ring: KeySet(()))
    assert fake_sm.latest("leased") == KeySet(()).to_json().encode()
    assert "streamgate-keys-lock" not in secret.annotations  # released

    secret.annotations["streamgate-keys-lock"] = f"other-run {time.time() + 60:.0f}"
    gets_before = fake_sm.gets
    done = threading.Event()
    writer = threading.Thread(
        target=lambda: (backend.update(lambda r: KeySet(())), done.set())
    )
    writer.start()
    deadline = time.monotonic() + 10
    while fake_sm.gets < gets_before + 2:  # the writer is polling the lease
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not done.is_set() and len(secret.versions) == 2
    with fake_sm._lock:
        secret.annotations.pop("streamgate-keys-lock")
        secret.etag += 1
    writer.join(10)
    assert done.is_set() and len(secret.versions) == 3


def test_gcp_update_detects_a_writer_that_bypassed_the_lease(fake_sm, gcp_env):
    fake_sm.create("bypassed", ONE_KEY)
    name = "projects/test-project/secrets/bypassed"

    def change(ring: KeySet) -> KeySet:
        fake_sm.add("bypassed", doc())  # e.g. `gcloud secrets versions add` meanwhile
        return KeySet(())

    with pytest.raises(KeyStoreError, match="another writer bypassed the lock"):
        open_key_store(name, gcp_env).update(change)


@pytest.mark.parametrize("form", ["arn", "url"])
def test_aws_reads_awscurrent_by_arn_or_name(aws, form):
    arn = create_aws_secret(ONE_KEY)
    name = arn.split(":secret:")[1].rsplit("-", 1)[0]
    spec = arn if form == "arn" else f"aws-secretsmanager://{name}"
    assert open_key_reader(spec)() == ONE_KEY


def test_aws_missing_secret_is_a_source_error(aws):
    with pytest.raises(KeyStoreError, match="ResourceNotFoundException"):
        open_key_reader("aws-secretsmanager://streamgate/absent")()


def test_aws_update_retries_when_awscurrent_moved_under_it(aws):
    arn = create_aws_secret(ONE_KEY)
    seen: list[list[str]] = []

    def change(ring: KeySet) -> KeySet:
        seen.append([k.id for k in ring.keys])
        if len(seen) == 1:  # a concurrent writer moves AWSCURRENT after our read
            other = doc({"id": "b", "sha256": "cd" * 32})
            moto_client().put_secret_value(SecretId=arn, SecretString=other.decode())
        return KeySet((*ring.keys, ApiKey("c", "ef" * 32)))

    open_key_store(arn).update(change)
    assert seen == [["a"], ["b"]]  # re-applied to the concurrent writer's version
    assert [k.id for k in parse_key_document(aws_current(arn)).keys] == ["b", "c"]


def test_aws_update_on_a_secret_without_a_value_writes_the_first_version(aws):
    arn = create_aws_secret()
    open_key_store(arn).update(lambda ring: parse_key_document(ONE_KEY))
    assert parse_key_document(aws_current(arn)) == parse_key_document(ONE_KEY)


def test_boto3_is_imported_only_for_an_aws_source():
    code = (
        "import sys, main, lib.gateway\n"
        "from lib.keys.chooser import open_key_reader\n"
        "open_key_reader('projects/p/secrets/s'); open_key_reader('keys.json')\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules\n"
        "open_key_reader('aws-secretsmanager://x')\n"
        "assert 'boto3' not in sys.modules  # not even to open the reader\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
