"""Fakes of the cloud stores on 127.0.0.1: Secret Manager's REST API, and moto for Secrets Manager and DynamoDB."""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.support.env import PINNED_LOCATION, PINNED_PROJECT

REGION = "us-east-1"
GEMINI_SECRET_VALUE = "AIzaSy-from-secrets-manager-EEEEEEEEEEEEEEEEEE"
PROJECT_NUMBER = "424242"
_PATH = re.compile(
    r"/v1/projects/(?P<p>[^/]+)/secrets/(?P<s>[^/:]+)"
    r"(?:/versions/(?P<v>[^/:]+):access|(?P<add>:addVersion))?"
)


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


def wif_config(token_url: str) -> dict:
    """What `gcloud iam workload-identity-pools create-cred-config ... --aws` writes; STS is `token_url`."""
    pool = "projects/123456789012/locations/global/workloadIdentityPools/streamgate"
    return {
        "universe_domain": "googleapis.com",
        "type": "external_account",
        "audience": f"//iam.googleapis.com/{pool}/providers/aws",
        "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
        "token_url": token_url,
        "credential_source": {
            "environment_id": "aws1",
            "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
            "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
            "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
        },
    }


class MotoSecrets:
    """Secrets Manager as moto's real HTTP server on 127.0.0.1, and the env that points boto3 at it."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def start(self) -> MotoSecrets:
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.env = {
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        return self

    def put(self, name: str, value: str) -> str:
        """Create a secret; returns its ARN."""
        import boto3

        client = boto3.client(
            "secretsmanager",
            region_name=REGION,
            endpoint_url=self.env["AWS_ENDPOINT_URL_SECRETS_MANAGER"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        return client.create_secret(Name=name, SecretString=value)["ARN"]

    def stop(self) -> None:
        self.server.stop()


_shared: list[MotoSecrets] = []


def moto_endpoint() -> str:
    """One shared moto server per test process (boto3 clients are cached per process)."""
    if not _shared:
        _shared.append(MotoSecrets().start())
    return _shared[0].endpoint


def aws_env() -> dict[str, str]:
    """What a CLI or gateway needs to reach the shared moto server (standard boto3 variables)."""
    moto_endpoint()
    return dict(_shared[0].env)


def moto_client() -> Any:
    import boto3

    return boto3.client(
        "secretsmanager",
        endpoint_url=moto_endpoint(),
        region_name=REGION,
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


def point_boto3_at_moto(monkeypatch: Any) -> dict[str, str]:
    """os.environ for moto, and no cached client that another module pointed elsewhere."""
    env = aws_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import lib.process

    monkeypatch.setattr(lib.process, "_made", {})
    return env


def secret_backed_env(
    kind: str, name: str, keys_file: Any, upstream: Any, moto: MotoSecrets, **extra: str
) -> dict[str, str]:
    """A gateway's environment as on AWS: upstream credentials in Secrets Manager (moto)."""
    env = {"STREAMGATE_UPSTREAM": kind, "STREAMGATE_KEYS": str(keys_file), **extra}
    if kind == "vertex":
        moto.put(
            f"streamgate/{name}-wif", json.dumps(wif_config(f"{upstream.url}/token"))
        )
        env.update(
            STREAMGATE_VERTEX_BASE_URL=upstream.url,
            STREAMGATE_VERTEX_PROJECT=PINNED_PROJECT,
            STREAMGATE_VERTEX_LOCATION=PINNED_LOCATION,
            STREAMGATE_GOOGLE_CREDENTIALS_SECRET=f"aws-secretsmanager://streamgate/{name}-wif",
        )
    elif kind == "gemini":
        arn = moto.put(f"streamgate/{name}-gemini-key", GEMINI_SECRET_VALUE)
        env.update(
            STREAMGATE_GEMINI_BASE_URL=upstream.url,
            STREAMGATE_GEMINI_API_KEY_SECRET=arn,
        )
    return {**moto.env, **env} if kind != "echo" else env


def point_dynamodb_at_moto(monkeypatch: Any) -> dict[str, str]:
    """os.environ for DynamoDB in the shared moto server (boto3's own AWS_ENDPOINT_URL_DYNAMODB)."""
    env = point_boto3_at_moto(monkeypatch)
    env["AWS_ENDPOINT_URL_DYNAMODB"] = moto_endpoint()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_endpoint())
    return env


def create_limits_table() -> str:
    """A new limits table in moto (made by the project's own helper); returns its name."""
    from lib.limits.dynamodb_table import create_table

    name = f"streamgate-limits-{uuid.uuid4().hex[:8]}"
    create_table(name)
    return name
