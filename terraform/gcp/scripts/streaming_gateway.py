#!/usr/bin/env python3
"""Create, re-point, describe or delete an API Gateway gateway with streaming enabled.

Why a script: google-beta's `google_api_gateway_gateway` has no streaming field, and a gateway's
streaming mode is fixed when it is created ("The streaming mode is fixed when you create the
gateway and can't be changed later", API Gateway release notes, 2026-09-29). So Terraform
(streaming.tf) calls this with the v1 REST API instead:

  ensure    create the gateway with streamingMode=STREAMING_MODE_ENABLED, or point an existing
            streaming gateway at STREAMGATE_GW_API_CONFIG; refuse one made without streaming
  delete    delete the gateway (already gone is fine)
  describe  for Terraform's `external` data source: JSON query on stdin, JSON strings on stdout

Settings: STREAMGATE_GW_PROJECT, _REGION, _ID, _API_CONFIG (ensure), _LABELS (JSON, optional).
Token: GOOGLE_OAUTH_ACCESS_TOKEN, else Application Default Credentials (if google-auth is
installed), else `gcloud auth print-access-token`. Standard library only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

ENDPOINT = os.environ.get(
    "STREAMGATE_APIGATEWAY_ENDPOINT", "https://apigateway.googleapis.com/v1"
)
STREAMING = "STREAMING_MODE_ENABLED"
EFFECTIVE_STREAMING = "EFFECTIVE_STREAMING_MODE_ENABLED"
POLL_S = float(os.environ.get("STREAMGATE_GW_POLL_S", "5"))
TIMEOUT_S = float(os.environ.get("STREAMGATE_GW_TIMEOUT_S", "1800"))


class GatewayError(RuntimeError):
    """A failed API call or a gateway that cannot be used; the message says what to do."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Gateway:
    """One gateway's coordinates."""

    project: str
    region: str
    gateway_id: str

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    @property
    def name(self) -> str:
        return f"{self.parent}/gateways/{self.gateway_id}"


def _adc_token() -> str:
    """A token from Application Default Credentials, or "" if google-auth or ADC is absent."""
    try:
        import google.auth
        import google.auth.exceptions
        import google.auth.transport.requests
    except ImportError:
        return ""
    try:
        scope = "https://www.googleapis.com/auth/cloud-platform"
        credentials, _ = google.auth.default(scopes=[scope])
        credentials.refresh(google.auth.transport.requests.Request())
    except google.auth.exceptions.GoogleAuthError:
        return ""
    return credentials.token or ""


def access_token() -> str:
    """An OAuth token for the API: the environment's, ADC's, or gcloud's."""
    token = os.environ.get("GOOGLE_OAUTH_ACCESS_TOKEN", "") or _adc_token()
    if token:
        return token
    try:
        out = subprocess.run(
            ["gcloud", "auth", "print-access-token"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise GatewayError(
            "no Google credentials: set GOOGLE_OAUTH_ACCESS_TOKEN, run "
            "`gcloud auth application-default login`, or install gcloud"
        ) from exc
    return out.stdout.strip()


def call(method: str, path: str, token: str, body: dict | None = None) -> dict:
    """One JSON request to the API Gateway v1 REST API."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{ENDPOINT}/{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        raise GatewayError(
            f"{method} {path}: HTTP {exc.code}: {detail}", exc.code
        ) from None


def wait(operation: dict, token: str) -> dict:
    """Poll a long-running operation until it is done; raise on its error."""
    deadline = time.monotonic() + TIMEOUT_S
    while not operation.get("done"):
        if time.monotonic() > deadline:
            raise GatewayError(f"operation {operation.get('name')} timed out")
        time.sleep(POLL_S)
        operation = call("GET", operation["name"], token)
    if "error" in operation:
        raise GatewayError(f"operation failed: {json.dumps(operation['error'])}")
    return operation


def get(gateway: Gateway, token: str) -> dict | None:
    """The gateway, or None if it does not exist."""
    try:
        return call("GET", gateway.name, token)
    except GatewayError as exc:
        if exc.status == 404:
            return None
        raise


def is_streaming(resource: dict) -> bool:
    """Whether the gateway streams (requested at creation, or as served)."""
    return (
        resource.get("effectiveStreamingMode") == EFFECTIVE_STREAMING
        or resource.get("streamingMode") == STREAMING
    )


def ensure(gateway: Gateway, api_config: str, labels: dict, token: str) -> dict:
    """Create the streaming gateway, or point the existing one at `api_config`."""
    current = get(gateway, token)
    if current is None:
        body = {"apiConfig": api_config, "streamingMode": STREAMING, "labels": labels}
        path = f"{gateway.parent}/gateways?gatewayId={gateway.gateway_id}"
        wait(call("POST", path, token, body), token)
    elif not is_streaming(current):
        raise GatewayError(
            f"gateway {gateway.name} was created without streaming, and the mode cannot"
            " be changed after creation: delete it (gcloud api-gateway gateways delete"
            f" {gateway.gateway_id} --location {gateway.region} --project"
            f" {gateway.project}) and apply again"
        )
    elif current.get("apiConfig") != api_config:
        body = {"apiConfig": api_config}
        path = f"{gateway.name}?updateMask=apiConfig"
        wait(call("PATCH", path, token, body), token)
    final = get(gateway, token) or {}
    if not is_streaming(final):
        raise GatewayError(f"gateway {gateway.name} does not report streaming")
    return final


def delete(gateway: Gateway, token: str) -> None:
    """Delete the gateway; one that is already gone is fine."""
    try:
        wait(call("DELETE", gateway.name, token), token)
    except GatewayError as exc:
        if exc.status != 404:
            raise


def describe(gateway: Gateway, token: str) -> dict[str, str]:
    """What Terraform needs to know, as strings (the `external` protocol)."""
    resource = get(gateway, token) or {}
    return {
        "exists": "true" if resource else "false",
        "api_config": resource.get("apiConfig", ""),
        "default_hostname": resource.get("defaultHostname", ""),
        "effective_streaming_mode": resource.get("effectiveStreamingMode", ""),
        "state": resource.get("state", ""),
        "streaming_mode": resource.get("streamingMode", ""),
    }


def _from_env() -> Gateway:
    env = os.environ
    keys = ("STREAMGATE_GW_PROJECT", "STREAMGATE_GW_REGION", "STREAMGATE_GW_ID")
    missing = [k for k in keys if not env.get(k)]
    if missing:
        raise GatewayError(f"missing settings: {', '.join(missing)}")
    return Gateway(*(env[k] for k in keys))


def main(argv: list[str]) -> int:
    """Run one command; errors go to stderr with exit status 1."""
    command = argv[1] if len(argv) > 1 else ""
    try:
        if command == "describe":
            query = json.load(sys.stdin)
            gateway = Gateway(query["project"], query["region"], query["gateway"])
            print(json.dumps(describe(gateway, access_token())))
        elif command == "ensure":
            gateway, api_config = (
                _from_env(),
                os.environ.get("STREAMGATE_GW_API_CONFIG"),
            )
            if not api_config:
                raise GatewayError("missing setting: STREAMGATE_GW_API_CONFIG")
            labels = json.loads(os.environ.get("STREAMGATE_GW_LABELS") or "{}")
            final = ensure(gateway, api_config, labels, access_token())
            print(
                f"streaming gateway {gateway.name}: https://{final.get('defaultHostname')}"
            )
        elif command == "delete":
            delete(_from_env(), access_token())
        else:
            raise GatewayError("usage: streaming_gateway.py ensure|delete|describe")
    except (GatewayError, KeyError, ValueError) as exc:
        print(f"streaming_gateway: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
