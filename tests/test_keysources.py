"""Key sources by shape: a file, GCP Secret Manager (a fake of its REST API) and AWS (moto server)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

import lib.aws_secrets
from lib.config import ConfigError
from lib.keyring import ApiKey, KeyRing, parse_key_document
from lib.keysource import KeySourceError, open_key_backend, open_key_reader, source_kind
from tests.gateway_process import ROOT, free_port

PROJECT_NUMBER = "424242"
_PATH = re.compile(
    r"/v1/projects/(?P<p>[^/]+)/secrets/(?P<s>[^/:]+)"
    r"(?:/versions/(?P<v>[^/:]+):access|(?P<add>:addVersion))?"
)


def doc(*keys: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(keys)}).encode()


@dataclass
class FakeSecret:
    versions: list[bytes] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    etag: int = 1


class FakeSecretManager:
    """Secret Manager's REST surface on 127.0.0.1: get, etag-checked patch, :access, :addVersion."""

    def __init__(self) -> None:
        self.secrets: dict[str, FakeSecret] = {}
        self.fail_status: int | None = None  # answer everything with this error
        self.accesses = 0
        self.gets = 0
        self.auth_headers: set[str] = set()
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    def stop(self) -> None:
        self._server.shutdown()

    def create(self, name: str, *versions: bytes) -> str:
        """A secret (short name) with `versions`; returns its full resource name."""
        self.secrets[name] = FakeSecret(list(versions))
        return f"projects/test-project/secrets/{name}"

    def add(self, name: str, data: bytes) -> None:
        with self._lock:
            self.secrets[name].versions.append(data)

    def latest(self, name: str) -> bytes:
        return self.secrets[name].versions[-1]

    @staticmethod
    def _error(code: int, status: str, message: str) -> Response:
        body = {"error": {"code": code, "message": message, "status": status}}
        return Response(json.dumps(body), code, content_type="application/json")

    def _secret_json(self, name: str, secret: FakeSecret) -> Response:
        body = {
            "name": f"projects/{PROJECT_NUMBER}/secrets/{name}",
            "replication": {"automatic": {}},
            "annotations": secret.annotations,
            "etag": f'"{secret.etag}"',
        }
        return Response(json.dumps(body), content_type="application/json")

    @Request.application
    def _app(self, request: Request) -> Response:
        self.auth_headers.add(request.headers.get("Authorization", ""))
        if not request.headers.get("Authorization", "").startswith("Bearer ya29."):
            return self._error(401, "UNAUTHENTICATED", "no access token")
        if self.fail_status:
            return self._error(self.fail_status, "UNAVAILABLE", "fake outage")
        match = _PATH.fullmatch(request.path)
        secret = self.secrets.get(match["s"]) if match else None
        if match is None or secret is None:
            return self._error(404, "NOT_FOUND", f"Secret [{request.path}] not found.")
        with self._lock:
            if match["v"]:
                return self._access(match["s"], secret, match["v"])
            if match["add"]:
                data = base64.b64decode(request.get_json()["payload"]["data"])
                secret.versions.append(data)
                name = f"projects/{PROJECT_NUMBER}/secrets/{match['s']}/versions/{len(secret.versions)}"
                return Response(json.dumps({"name": name, "state": "ENABLED"}))
            if request.method == "PATCH":
                return self._patch(match["s"], secret, request)
            self.gets += 1
            return self._secret_json(match["s"], secret)

    def _access(self, name: str, secret: FakeSecret, version: str) -> Response:
        self.accesses += 1
        number = len(secret.versions) if version == "latest" else int(version)
        if not 1 <= number <= len(secret.versions):
            return self._error(404, "NOT_FOUND", "Secret Version not found.")
        payload = base64.b64encode(secret.versions[number - 1]).decode()
        body = {
            "name": f"projects/{PROJECT_NUMBER}/secrets/{name}/versions/{number}",
            "payload": {"data": payload},
        }
        return Response(json.dumps(body), content_type="application/json")

    def _patch(self, name: str, secret: FakeSecret, request: Request) -> Response:
        body = request.get_json()
        assert request.args["updateMask"] == "annotations"
        if body.get("etag") and body["etag"] != f'"{secret.etag}"':
            return self._error(400, "FAILED_PRECONDITION", "etag does not match")
        secret.annotations = dict(body["annotations"])
        secret.etag += 1
        return self._secret_json(name, secret)


_moto: list[Any] = []
AWS_REGION = "us-east-1"


def moto_endpoint() -> str:
    """One moto server per test process (boto3 clients are cached per process)."""
    if not _moto:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        _moto.append(server)
    host, port = _moto[0].get_host_and_port()
    return f"http://{host}:{port}"


def aws_env() -> dict[str, str]:
    """What a CLI or gateway needs to reach moto (the standard boto3 variables)."""
    return {
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_endpoint(),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": AWS_REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def moto_client() -> Any:
    import boto3

    return boto3.client(
        "secretsmanager",
        endpoint_url=moto_endpoint(),
        region_name=AWS_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_aws_secret(value: bytes | None = None) -> str:
    """A new secret in moto (with `value` as its first version); returns its ARN."""
    args: dict[str, Any] = {"Name": f"streamgate/keys-{uuid.uuid4().hex[:8]}"}
    if value is not None:
        args["SecretString"] = value.decode()
    return moto_client().create_secret(**args)["ARN"]


def aws_current(arn: str) -> bytes:
    value = moto_client().get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")
    return value["SecretString"].encode()


@pytest.fixture(scope="module")
def fake_sm() -> Iterator[FakeSecretManager]:
    fake = FakeSecretManager()
    yield fake
    fake.stop()


@pytest.fixture
def gcp_env(
    fake_sm: FakeSecretManager, service_account_file: Path, monkeypatch
) -> dict[str, str]:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(service_account_file))
    return {"STREAMGATE_SECRETMANAGER_BASE_URL": fake_sm.url}


def point_boto3_at_moto(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """os.environ for moto, and no cached client that another module pointed elsewhere."""
    env = aws_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(lib.aws_secrets, "_clients", {})
    return env


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
    assert source_kind(spec) == kind


@pytest.mark.parametrize(
    "spec",
    ["projects/p/secrets/", "projects/p/secrets/s/versions", "projects/p/secrets/s/x"],
)
def test_a_malformed_secret_name_is_a_configuration_error(spec):
    with pytest.raises(ConfigError, match="projects/{project}/secrets/{secret}"):
        open_key_reader(spec)


def test_no_spec_fails_on_read_not_on_open():
    read = open_key_reader("")
    with pytest.raises(KeySourceError, match="STREAMGATE_KEYS is not set"):
        read()


def test_a_missing_file_is_a_source_error(tmp_path):
    with pytest.raises(KeySourceError, match="cannot read the keys file"):
        open_key_reader(str(tmp_path / "nope.json"))()


def test_the_file_backend_rewrites_the_file_by_rename_and_keeps_its_mode(tmp_path):
    path = tmp_path / "keys.json"
    path.write_bytes(ONE_KEY)
    path.chmod(0o640)
    inode = path.stat().st_ino
    backend = open_key_backend(str(path))
    backend.update(lambda ring: ring)  # unchanged: no write
    assert path.stat().st_ino == inode
    backend.update(lambda ring: KeyRing(()))
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
    with pytest.raises(KeySourceError, match=message):
        open_key_reader(spec, gcp_env)()


def test_gcp_unreachable_is_a_source_error(gcp_env):
    env = {"STREAMGATE_SECRETMANAGER_BASE_URL": f"http://127.0.0.1:{free_port()}"}
    with pytest.raises(
        KeySourceError, match=r"cannot reach Secret Manager \(ConnectionError\)"
    ):
        open_key_reader("projects/p/secrets/s", env)()


def test_gcp_update_waits_for_a_live_lease_and_takes_over_an_expired_one(
    fake_sm, gcp_env
):
    name = fake_sm.create("leased", ONE_KEY)
    secret = fake_sm.secrets["leased"]
    secret.annotations["streamgate-keys-lock"] = f"crashed-run {time.time() - 1:.0f}"
    backend = open_key_backend(name, gcp_env)
    backend.update(lambda ring: KeyRing(()))
    assert fake_sm.latest("leased") == KeyRing(()).to_json().encode()
    assert "streamgate-keys-lock" not in secret.annotations  # released

    secret.annotations["streamgate-keys-lock"] = f"other-run {time.time() + 60:.0f}"
    gets_before = fake_sm.gets
    done = threading.Event()
    writer = threading.Thread(
        target=lambda: (backend.update(lambda r: KeyRing(())), done.set())
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

    def change(ring: KeyRing) -> KeyRing:
        fake_sm.add("bypassed", doc())  # e.g. `gcloud secrets versions add` meanwhile
        return KeyRing(())

    with pytest.raises(KeySourceError, match="another writer bypassed the lock"):
        open_key_backend(name, gcp_env).update(change)


@pytest.mark.parametrize("form", ["arn", "url"])
def test_aws_reads_awscurrent_by_arn_or_name(aws, form):
    arn = create_aws_secret(ONE_KEY)
    name = arn.split(":secret:")[1].rsplit("-", 1)[0]
    spec = arn if form == "arn" else f"aws-secretsmanager://{name}"
    assert open_key_reader(spec)() == ONE_KEY


def test_aws_missing_secret_is_a_source_error(aws):
    with pytest.raises(KeySourceError, match="ResourceNotFoundException"):
        open_key_reader("aws-secretsmanager://streamgate/absent")()


def test_aws_update_retries_when_awscurrent_moved_under_it(aws):
    arn = create_aws_secret(ONE_KEY)
    seen: list[list[str]] = []

    def change(ring: KeyRing) -> KeyRing:
        seen.append([k.id for k in ring.keys])
        if len(seen) == 1:  # a concurrent writer moves AWSCURRENT after our read
            other = doc({"id": "b", "sha256": "cd" * 32})
            moto_client().put_secret_value(SecretId=arn, SecretString=other.decode())
        return KeyRing((*ring.keys, ApiKey("c", "ef" * 32)))

    open_key_backend(arn).update(change)
    assert seen == [["a"], ["b"]]  # re-applied to the concurrent writer's version
    assert [k.id for k in parse_key_document(aws_current(arn)).keys] == ["b", "c"]


def test_aws_update_on_a_secret_without_a_value_writes_the_first_version(aws):
    arn = create_aws_secret()
    open_key_backend(arn).update(lambda ring: parse_key_document(ONE_KEY))
    assert parse_key_document(aws_current(arn)) == parse_key_document(ONE_KEY)


def test_boto3_is_imported_only_for_an_aws_source():
    code = (
        "import sys, main, lib.gateway\n"
        "from lib.keysource import open_key_reader\n"
        "open_key_reader('projects/p/secrets/s'); open_key_reader('keys.json')\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules\n"
        "open_key_reader('aws-secretsmanager://x')\n"
        "assert 'boto3' not in sys.modules  # not even to open the reader\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
