"""terraform/: parses, follows house style, and stays wired to the code (routes, targets, env).

No provider can be downloaded here, so these are static checks of the HCL (python-hcl2), plus
`terraform fmt -check` when a terraform binary is on PATH, plus the streaming-gateway script
run against a fake API Gateway REST API on loopback.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import hcl2
import pytest
from hcl2.utils import SerializationOptions

from lib.routes import FAMILY_TARGETS, ROUTES

REPO = Path(__file__).resolve().parent.parent
TERRAFORM = REPO / "terraform"
STACKS = ("gcp", "aws")
OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
SCRIPT = TERRAFORM / "gcp/scripts/streaming_gateway.py"
UPSTREAMS = ("echo", "vertex", "gemini")

# What each stack must set for the code to run (lib/config.py and the runtime contract).
REQUIRED_ENV = {"STREAMGATE_UPSTREAM", "STREAMGATE_KEYS", "THREADS"}
REQUIRED_BY_UPSTREAM = {
    "gcp": {
        "echo": set(),
        "vertex": {"STREAMGATE_VERTEX_PROJECT", "STREAMGATE_VERTEX_LOCATION"},
        "gemini": {"STREAMGATE_GEMINI_API_KEY"},
    },
    "aws": {
        "echo": set(),
        "vertex": {
            "STREAMGATE_VERTEX_PROJECT",
            "STREAMGATE_VERTEX_LOCATION",
            "STREAMGATE_GOOGLE_CREDENTIALS_SECRET",
        },
        "gemini": {"STREAMGATE_GEMINI_API_KEY_SECRET"},
    },
}
STREAMING_ENV = {"AWS_LAMBDA_EXEC_WRAPPER", "AWS_LWA_INVOKE_MODE", "PORT"}
# Every variable a stack may set: the runtime's contract plus the platform's own.
KNOWN_ENV = {
    *REQUIRED_ENV,
    "STREAMGATE_KEYS_TTL_S",
    "STREAMGATE_IDLE_TIMEOUT_S",
    "STREAMGATE_CORS_ORIGINS",
    "STREAMGATE_VERTEX_PROJECT",
    "STREAMGATE_VERTEX_LOCATION",
    "STREAMGATE_GEMINI_API_KEY",
    "STREAMGATE_GEMINI_API_KEY_SECRET",
    "STREAMGATE_GOOGLE_CREDENTIALS_SECRET",
    "AWS_LAMBDA_EXEC_WRAPPER",
    "AWS_LWA_INVOKE_MODE",
    "PORT",
    "FUNCTION_TARGET",
}


def tf_files() -> list[Path]:
    return sorted(TERRAFORM.rglob("*.tf"))


@functools.cache
def load(path: Path) -> dict[str, Any]:
    """One parsed file (cached: parsing is slow; callers must not modify the result)."""
    with path.open() as f:
        return hcl2.load(f, serialization_options=OPTIONS)


@functools.cache
def load_stack(stack: str) -> dict[str, Any]:
    """All blocks of a root module, merged: {"resource": {type: {name: body}}, ...}."""
    merged: dict[str, Any] = {"resource": {}, "data": {}, "variable": {}, "output": {}}
    merged["locals"] = {}
    for path in sorted((TERRAFORM / stack).glob("*.tf")):
        doc = load(path)
        for kind in ("resource", "data"):
            for block in doc.get(kind, []):
                for rtype, named in block.items():
                    merged[kind].setdefault(rtype, {}).update(named)
        for kind in ("variable", "output"):
            for block in doc.get(kind, []):
                merged[kind].update(block)
        for block in doc.get("locals", []):
            merged["locals"].update(block)
    return merged


@pytest.fixture(scope="module", params=STACKS)
def stack(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, load_stack(request.param)


def strip(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if not k.startswith("__")}


# --- parsing and house style -------------------------------------------------------------


@pytest.mark.parametrize(
    "path", tf_files(), ids=lambda p: str(p.relative_to(TERRAFORM))
)
def test_every_tf_file_parses(path: Path) -> None:
    assert load(path)


def test_each_stack_has_the_house_files() -> None:
    for stack in STACKS:
        names = {p.name for p in (TERRAFORM / stack).glob("*.tf")}
        assert {"versions.tf", "variables.tf", "outputs.tf", "main.tf"} <= names
        assert (TERRAFORM / stack / "examples/terraform.tfvars").is_file()


def test_providers_are_pinned_with_a_range() -> None:
    for stack in STACKS:
        (terraform,) = load(TERRAFORM / stack / "versions.tf")["terraform"]
        assert re.fullmatch(r">= [\d.]+, < [\d.]+", terraform["required_version"])
        (providers,) = terraform["required_providers"]
        for name, spec in strip(providers).items():
            assert re.fullmatch(r">= [\d.]+, < [\d.]+", spec["version"]), name


def test_main_tf_holds_only_locals() -> None:
    for stack in STACKS:
        assert set(strip(load(TERRAFORM / stack / "main.tf"))) == {"locals"}


def test_variables_are_described_typed_and_sorted(stack: tuple[str, dict]) -> None:
    name, blocks = stack
    doc = load(TERRAFORM / name / "variables.tf")
    names = [n for block in doc["variable"] for n in block]
    assert names == sorted(names), "variables.tf is not in alphabetical order"
    for var, body in blocks["variable"].items():
        assert body.get("description", "").strip(), f"{name}: variable {var}"
        assert body.get("type"), f"{name}: variable {var} has no type"


def test_outputs_are_described_and_sorted(stack: tuple[str, dict]) -> None:
    name, blocks = stack
    doc = load(TERRAFORM / name / "outputs.tf")
    names = [n for block in doc["output"] for n in block]
    assert names == sorted(names), "outputs.tf is not in alphabetical order"
    for out, body in blocks["output"].items():
        assert body.get("description", "").strip(), f"{name}: output {out}"


def test_variables_and_outputs_live_in_their_files() -> None:
    for stack in STACKS:
        for path in (TERRAFORM / stack).glob("*.tf"):
            doc = load(path)
            if path.name != "variables.tf":
                assert "variable" not in doc, path
            if path.name != "outputs.tf":
                assert "output" not in doc, path


def test_examples_set_only_declared_variables(stack: tuple[str, dict]) -> None:
    name, blocks = stack
    example = strip(load(TERRAFORM / name / "examples/terraform.tfvars"))
    assert example
    assert set(example) <= set(blocks["variable"])
    required = {v for v, body in blocks["variable"].items() if "default" not in body}
    assert required <= set(example)


def test_checkov_skips_carry_a_reason() -> None:
    for path in tf_files():
        for match in re.finditer(r"checkov:skip=([^\s:]+)(?::(.*))?", path.read_text()):
            check, reason = match.group(1), (match.group(2) or "").strip()
            assert re.fullmatch(r"CKV2?_[A-Z]+_\d+", check), path
            assert len(reason) > 20, f"{path}: skip of {check} needs a reason"


def test_terraform_fmt() -> None:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform binary not on PATH")
    result = subprocess.run(
        [binary, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- wired to the code -------------------------------------------------------------------


def test_routes_map_has_one_entry_per_family(stack: tuple[str, dict]) -> None:
    _, blocks = stack
    routes = blocks["locals"]["routes"]
    assert {f: r["entry_point"] for f, r in routes.items()} == FAMILY_TARGETS


def longest_prefix(prefixes: dict[str, str], path: str) -> str | None:
    found = [p for p in prefixes if path.startswith(p + "/")]
    return max(found, key=len) if found else None


def test_path_prefixes_send_every_route_to_its_family(stack: tuple[str, dict]) -> None:
    _, blocks = stack
    routes = blocks["locals"]["routes"]
    prefixes = {p: f for f, r in routes.items() for p in r["path_prefixes"]}
    assert len(prefixes) == sum(len(r["path_prefixes"]) for r in routes.values())
    used = set()
    for route in ROUTES:
        path = re.sub(r"\{\w+\}", "x", route.template) + ":streamGenerateContent"
        prefix = longest_prefix(prefixes, path)
        assert prefix is not None, route.template
        assert prefixes[prefix] == route.family, route.template
        used.add(prefix)
    assert used == set(prefixes), "a prefix serves no route"
    for prefix in prefixes:
        assert 1 <= len(prefix.strip("/").split("/")) <= 2  # rest_api.tf's two levels
        assert "{" not in prefix


def main_py_targets() -> set[str]:
    tree = ast.parse((REPO / "main.py").read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def test_entry_points_exist_in_main_py(stack: tuple[str, dict]) -> None:
    _, blocks = stack
    entry_points = {r["entry_point"] for r in blocks["locals"]["routes"].values()}
    assert entry_points == set(FAMILY_TARGETS.values())
    if not (REPO / "main.py").exists():
        pytest.skip("main.py not written yet")
    missing = entry_points - main_py_targets()
    assert not missing, f"main.py does not define {sorted(missing)}"


def env_names(locals_: dict[str, Any], upstream: str) -> set[str]:
    """The plain variables a stack sets for `upstream` (common + upstream-specific)."""
    common, by_upstream = locals_["common_environment"], locals_["upstream_environment"]
    return set(common) | set(by_upstream[upstream])


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_gcp_sets_every_required_variable(upstream: str) -> None:
    blocks = load_stack("gcp")
    locals_ = blocks["locals"]
    plain = env_names(locals_, upstream)
    secret = set(locals_["upstream_secret_environment"][upstream])
    assert REQUIRED_ENV | REQUIRED_BY_UPSTREAM["gcp"][upstream] <= plain | secret
    assert plain | secret <= KNOWN_ENV
    assert not plain & secret
    assert "local.upstream_environment[var.upstream]" in locals_["environment"]
    assert "local.common_environment" in locals_["environment"]
    assert locals_["secret_environment"] == (
        "${local.upstream_secret_environment[var.upstream]}"
    )
    function = blocks["resource"]["google_cloudfunctions2_function"]["family"]
    (service,) = function["service_config"]
    assert service["environment_variables"] == "${local.environment}"
    (dynamic,) = service["dynamic"]
    secret_env = dynamic["secret_environment_variables"]
    assert secret_env["for_each"] == "${local.secret_environment}"
    (content,) = secret_env["content"]
    assert content["version"] == "latest"


@pytest.mark.parametrize("streaming", [True, False])
@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_aws_sets_every_required_variable(upstream: str, streaming: bool) -> None:
    blocks = load_stack("aws")
    locals_ = blocks["locals"]
    names = env_names(locals_, upstream) | {"FUNCTION_TARGET"}
    required = REQUIRED_ENV | REQUIRED_BY_UPSTREAM["aws"][upstream]
    if streaming:
        assert locals_["streaming_environment"].startswith("${var.streaming ?")
        for name in STREAMING_ENV:
            assert name in locals_["streaming_environment"]
        names |= STREAMING_ENV
        required |= STREAMING_ENV
    assert required <= names
    assert names <= KNOWN_ENV
    environment = locals_["environment"]
    for part in ("common_environment", "upstream_environment[var.upstream]"):
        assert f"local.{part}" in environment
    assert "local.streaming_environment" in environment
    function = blocks["resource"]["aws_lambda_function"]["family"]
    (env,) = function["environment"]
    assert env["variables"] == (
        "${merge(local.environment, {FUNCTION_TARGET = each.value.entry_point})}"
    )


def test_aws_streaming_environment_runs_the_web_adapter() -> None:
    text = (TERRAFORM / "aws/main.tf").read_text()
    for name, value in (
        ("AWS_LAMBDA_EXEC_WRAPPER", "/opt/bootstrap"),
        ("AWS_LWA_INVOKE_MODE", "response_stream"),
        ("AWS_LWA_READINESS_CHECK_PROTOCOL", "tcp"),
        ("PORT", "8080"),
    ):
        assert re.search(rf'\b{name}\s*=\s*"{value}"', text), name
    locals_ = load_stack("aws")["locals"]
    assert locals_["handler"] == (
        '${var.streaming ? "run.sh" : "handlers.aws_lambda.lambda_handler"}'
    )
    assert "753240598075:layer:LambdaAdapterLayerX86:27" in locals_["adapter_layer_arn"]
    assert "var.region" in locals_["adapter_layer_arn"]


def test_threads_equal_the_per_instance_concurrency() -> None:
    blocks = load_stack("gcp")
    concurrency = "var.function.max_instance_request_concurrency"
    assert blocks["locals"]["common_environment"]["THREADS"] == (
        f"${{tostring({concurrency})}}"
    )
    function = blocks["resource"]["google_cloudfunctions2_function"]["family"]
    (service,) = function["service_config"]
    assert service["max_instance_request_concurrency"] == f"${{{concurrency}}}"
    variable_type = blocks["variable"]["function"]["type"]
    assert "max_instance_request_concurrency = optional(number, 80)" in variable_type
    assert 'available_cpu = optional(string, "1")' in variable_type
    assert "min_instance_count = optional(number" in variable_type


# --- GCP ---------------------------------------------------------------------------------


def test_gcp_functions() -> None:
    blocks = load_stack("gcp")
    function = blocks["resource"]["google_cloudfunctions2_function"]["family"]
    assert function["for_each"] == "${local.routes}"
    assert function["name"] == "${local.prefix}${each.key}"
    (build,) = function["build_config"]
    assert build["runtime"] == "python312"
    assert build["entry_point"] == "${each.value.entry_point}"
    (service,) = function["service_config"]
    assert service["timeout_seconds"] == "${var.function.timeout_seconds}"
    assert (
        "timeout_seconds = optional(number, 3600)"
        in blocks["variable"]["function"]["type"]
    )
    assert service["available_cpu"] == "${var.function.available_cpu}"
    assert service["min_instance_count"] == "${var.function.min_instance_count}"
    assert service["service_account_email"] == (
        "${google_service_account.function.email}"
    )


def test_gcp_source_zip_is_named_by_its_md5() -> None:
    blocks = load_stack("gcp")
    archive = blocks["data"]["archive_file"]["source"]
    assert archive["excludes"] == "${local.source_excludes}"
    excludes = set(blocks["locals"]["source_excludes"])
    for name in (".venv", ".git", "tests", "terraform", "bench", "build", ".ci"):
        assert name in excludes
    obj = blocks["resource"]["google_storage_bucket_object"]["source"]
    assert "${data.archive_file.source.output_md5}" in obj["name"]


def test_gcp_secrets_have_no_values_and_exact_accessors() -> None:
    blocks = load_stack("gcp")
    assert "google_secret_manager_secret_version" not in blocks["resource"]
    members = blocks["resource"]["google_secret_manager_secret_iam_member"]
    accessor = members["function"]
    assert accessor["for_each"] == "${local.function_secrets}"
    assert accessor["role"] == "roles/secretmanager.secretAccessor"
    assert "google_service_account.function.email" in accessor["member"]
    secrets = blocks["locals"]["function_secrets"]
    assert "google_secret_manager_secret.keys.secret_id" in secrets
    assert 'var.upstream == "gemini"' in secrets
    for name, body in members.items():
        if name != "function":
            assert "google_secret_manager_secret.keys" in body["secret_id"]


def test_gcp_vertex_role_only_for_the_vertex_upstream() -> None:
    blocks = load_stack("gcp")
    bindings = blocks["resource"]["google_project_iam_member"]
    assert set(bindings) == {"vertex_user"}
    binding = bindings["vertex_user"]
    assert binding["role"] == "roles/aiplatform.user"
    assert binding["count"] == '${var.upstream == "vertex" ? 1 : 0}'


def test_gcp_gateway_invokes_each_function() -> None:
    blocks = load_stack("gcp")
    invoker = blocks["resource"]["google_cloud_run_v2_service_iam_member"][
        "gateway_invoker"
    ]
    assert invoker["for_each"] == "${local.routes}"
    assert invoker["role"] == "roles/run.invoker"
    assert "google_service_account.gateway.email" in invoker["member"]
    config = blocks["resource"]["google_api_gateway_api_config"]["this"]
    (gateway_config,) = config["gateway_config"]
    (backend,) = gateway_config["backend_config"]
    assert backend["google_service_account"] == (
        "${google_service_account.gateway.email}"
    )


def test_gcp_api_config_id_carries_the_spec_md5() -> None:
    blocks = load_stack("gcp")
    config = blocks["resource"]["google_api_gateway_api_config"]["this"]
    assert "md5(local.openapi_spec)" in config["api_config_id"]
    (lifecycle,) = config["lifecycle"]
    assert lifecycle["create_before_destroy"] is True
    spec = blocks["locals"]["openapi_spec"]
    assert 'templatefile("${path.module}/openapi.yaml.tftpl"' in spec
    assert '"backend_${family}"' in spec
    assert "service_config[0].uri" in spec


def test_gcp_streaming_gateway_step_is_wired() -> None:
    blocks = load_stack("gcp")
    resources = blocks["resource"]
    gateway = resources["terraform_data"]["streaming_gateway"]
    create, destroy = (p["local-exec"] for p in gateway["provisioner"])
    assert create["interpreter"] == [
        "${var.gateway.python}",
        "${local.streaming_gateway_script}",
    ]
    assert create["command"] == "ensure"
    assert create["environment"]["STREAMGATE_GW_API_CONFIG"] == (
        "${google_api_gateway_api_config.this.id}"
    )
    assert destroy["when"] == "destroy" and destroy["command"] == "delete"
    assert "${local.streaming_gateway_id}" in gateway["triggers_replace"]
    config = resources["terraform_data"]["streaming_gateway_config"]
    assert "${google_api_gateway_api_config.this.id}" in config["triggers_replace"]
    (provisioner,) = config["provisioner"]
    assert provisioner["local-exec"]["command"] == "ensure"
    describe = blocks["data"]["external"]["streaming_gateway"]
    assert describe["program"][-1] == "describe"
    (lifecycle,) = describe["lifecycle"]
    (postcondition,) = lifecycle["postcondition"]
    assert "EFFECTIVE_STREAMING_MODE_ENABLED" in postcondition["condition"]
    assert blocks["locals"]["streaming_gateway_script"] == (
        '${abspath("${path.module}/scripts/streaming_gateway.py")}'
    )
    assert SCRIPT.is_file()
    buffered = resources["google_api_gateway_gateway"]["buffered"]
    assert buffered["count"] == "${var.gateway.streaming ? 0 : 1}"
    assert "data.external.streaming_gateway" in blocks["locals"]["gateway_hostname"]
    assert "optional(bool, true)" in blocks["variable"]["gateway"]["type"]


def test_gcp_outputs() -> None:
    outputs = set(load_stack("gcp")["output"])
    for name in ("gateway_url", "function_urls", "keys_secret", "service_account"):
        assert name in outputs
    assert "gemini_api_key_secret" in outputs


# --- AWS ---------------------------------------------------------------------------------


def test_aws_lambdas() -> None:
    blocks = load_stack("aws")
    function = blocks["resource"]["aws_lambda_function"]["family"]
    assert function["for_each"] == "${local.routes}"
    assert function["function_name"] == "${local.prefix}${each.key}"
    assert function["runtime"] == "python3.12"
    assert function["handler"] == "${local.handler}"
    assert function["layers"] == "${var.streaming ? [local.adapter_layer_arn] : []}"
    assert function["timeout"] == "${var.lambda.timeout}"
    assert function["kms_key_arn"] == "${aws_kms_key.this.arn}"
    (tracing,) = function["tracing_config"]
    assert tracing["mode"] == "Active"
    (logging,) = function["logging_config"]
    assert "aws_cloudwatch_log_group.function[each.key]" in logging["log_group"]
    assert "filebase64sha256(local.package_path)" in function["source_code_hash"]
    variables = blocks["variable"]
    assert variables["package_path"]["default"] == "../../build/streamgate-aws.zip"
    assert "timeout = optional(number, 900)" in variables["lambda"]["type"]
    group = blocks["resource"]["aws_cloudwatch_log_group"]["function"]
    assert group["retention_in_days"] == "${var.log_retention_days}"


def test_aws_rest_api_streams() -> None:
    blocks = load_stack("aws")
    resources = blocks["resource"]
    integration = resources["aws_api_gateway_integration"]["proxy"]
    assert integration["type"] == "AWS_PROXY"
    assert "response_streaming_invoke_arn" in integration["uri"]
    assert integration["response_transfer_mode"] == (
        '${var.streaming ? "STREAM" : "BUFFERED"}'
    )
    assert "900000" in integration["timeout_milliseconds"]
    proxy = resources["aws_api_gateway_resource"]["proxy"]
    assert proxy["path_part"] == "{proxy+}"
    (endpoint,) = resources["aws_api_gateway_rest_api"]["this"][
        "endpoint_configuration"
    ]
    assert endpoint["types"] == ["REGIONAL"]
    assert "aws_apigatewayv2_api" not in resources  # HTTP APIs buffer


def test_aws_function_url_streams() -> None:
    resources = load_stack("aws")["resource"]
    url = resources["aws_lambda_function_url"]["family"]
    assert url["invoke_mode"] == '${var.streaming ? "RESPONSE_STREAM" : "BUFFERED"}'
    assert "var.function_url.enabled" in url["for_each"]


def test_aws_secrets_use_the_customer_key_and_have_no_values() -> None:
    resources = load_stack("aws")["resource"]
    assert "aws_secretsmanager_secret_version" not in resources
    for name, secret in resources["aws_secretsmanager_secret"].items():
        assert secret["kms_key_id"] == "${aws_kms_key.this.arn}", name
    assert resources["aws_kms_key"]["this"]["enable_key_rotation"] is True


def test_aws_function_policy_is_least_privilege() -> None:
    blocks = load_stack("aws")
    document = blocks["data"]["aws_iam_policy_document"]["function"]
    statements = {s["sid"]: s for s in document["statement"]}
    assert set(statements) == {"Logs", "Secrets", "Key", "Tracing"}
    assert statements["Secrets"]["actions"] == ["secretsmanager:GetSecretValue"]
    assert statements["Secrets"]["resources"] == "${local.function_secret_arns}"
    assert statements["Key"]["actions"] == ["kms:Decrypt"]
    assert statements["Key"]["resources"] == ["${aws_kms_key.this.arn}"]
    assert statements["Logs"]["actions"] == [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ]
    for sid, statement in statements.items():
        assert not any(a.endswith("*") for a in statement["actions"]), sid
        if sid != "Tracing":
            assert statement["resources"] != ["*"], sid
    secrets = blocks["locals"]["function_secret_arns"]
    for name in ("keys", "gemini_api_key", "google_credentials"):
        assert f"aws_secretsmanager_secret.{name}" in secrets


# --- the streaming-gateway script against a fake API Gateway REST API --------------------


class FakeApiGateway(BaseHTTPRequestHandler):
    """Just enough of apigateway.googleapis.com/v1 gateways and operations."""

    gateways: ClassVar[dict[str, dict[str, Any]]] = {}
    calls: ClassVar[list[tuple[str, str, dict[str, Any] | None]]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.calls.append((self.command, self.path, body))
        if self.headers.get("Authorization") != "Bearer test-token":
            return self._reply(401, {"error": {"code": 401}})
        name = url.path.removeprefix("/v1/")
        operation = {"name": f"{name}/operations/op", "done": False}
        if "/operations/" in name:
            return self._reply(200, {"name": name, "done": True})
        if self.command == "POST":
            gateway_id = parse_qs(url.query)["gatewayId"][0]
            mode = body.get("streamingMode", "")
            self.gateways[f"{name}/{gateway_id}"] = {
                "name": f"{name}/{gateway_id}",
                "apiConfig": body["apiConfig"],
                "streamingMode": mode,
                "effectiveStreamingMode": "EFFECTIVE_STREAMING_MODE_ENABLED"
                if mode == "STREAMING_MODE_ENABLED"
                else "EFFECTIVE_STREAMING_MODE_DISABLED",
                "defaultHostname": f"{gateway_id}-abc.uc.gateway.dev",
                "state": "ACTIVE",
            }
            return self._reply(200, operation)
        if name not in self.gateways:
            return self._reply(404, {"error": {"code": 404, "status": "NOT_FOUND"}})
        if self.command == "GET":
            return self._reply(200, self.gateways[name])
        if self.command == "PATCH":
            assert parse_qs(url.query)["updateMask"] == ["apiConfig"]
            self.gateways[name]["apiConfig"] = body["apiConfig"]
            return self._reply(200, operation)
        if self.command == "DELETE":
            del self.gateways[name]
            return self._reply(200, operation)
        return self._reply(405, {})

    do_GET = do_POST = do_PATCH = do_DELETE = _handle


@pytest.fixture
def fake_api() -> Iterator[str]:
    FakeApiGateway.gateways = {}
    FakeApiGateway.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApiGateway)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


CONFIG_1 = "projects/p/locations/global/apis/streamgate-api/configs/streamgate-aaa"
CONFIG_2 = "projects/p/locations/global/apis/streamgate-api/configs/streamgate-bbb"
GATEWAY_NAME = "projects/p/locations/us-central1/gateways/streamgate-gateway"


def run_script(endpoint: str, command: str, stdin: str = "", **settings: str):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "STREAMGATE_APIGATEWAY_ENDPOINT": endpoint,
        "GOOGLE_OAUTH_ACCESS_TOKEN": "test-token",
        "STREAMGATE_GW_POLL_S": "0.01",
        "STREAMGATE_GW_PROJECT": "p",
        "STREAMGATE_GW_REGION": "us-central1",
        "STREAMGATE_GW_ID": "streamgate-gateway",
        **settings,
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), command],
        check=False,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


def test_script_creates_the_gateway_with_streaming(fake_api: str) -> None:
    result = run_script(fake_api, "ensure", STREAMGATE_GW_API_CONFIG=CONFIG_1)
    assert result.returncode == 0, result.stderr
    assert "https://streamgate-gateway-abc.uc.gateway.dev" in result.stdout
    posts = [c for c in FakeApiGateway.calls if c[0] == "POST"]
    assert len(posts) == 1
    _, path, body = posts[0]
    assert path.endswith("/gateways?gatewayId=streamgate-gateway")
    assert body["streamingMode"] == "STREAMING_MODE_ENABLED"
    assert body["apiConfig"] == CONFIG_1
    assert any("/operations/" in c[1] for c in FakeApiGateway.calls)


def test_script_moves_the_gateway_to_a_new_config(fake_api: str) -> None:
    run_script(fake_api, "ensure", STREAMGATE_GW_API_CONFIG=CONFIG_1)
    FakeApiGateway.calls.clear()
    result = run_script(fake_api, "ensure", STREAMGATE_GW_API_CONFIG=CONFIG_2)
    assert result.returncode == 0, result.stderr
    methods = [c[0] for c in FakeApiGateway.calls]
    assert "POST" not in methods and "PATCH" in methods
    assert FakeApiGateway.gateways[GATEWAY_NAME]["apiConfig"] == CONFIG_2
    FakeApiGateway.calls.clear()
    assert (
        run_script(fake_api, "ensure", STREAMGATE_GW_API_CONFIG=CONFIG_2).returncode
        == 0
    )
    assert [c[0] for c in FakeApiGateway.calls] == ["GET", "GET"]


def test_script_refuses_a_gateway_made_without_streaming(fake_api: str) -> None:
    FakeApiGateway.gateways[GATEWAY_NAME] = {
        "name": GATEWAY_NAME,
        "apiConfig": CONFIG_1,
        "effectiveStreamingMode": "EFFECTIVE_STREAMING_MODE_DISABLED",
    }
    result = run_script(fake_api, "ensure", STREAMGATE_GW_API_CONFIG=CONFIG_2)
    assert result.returncode == 1
    assert "created without streaming" in result.stderr
    assert not [c for c in FakeApiGateway.calls if c[0] in ("PATCH", "POST")]


def test_script_describes_and_deletes(fake_api: str) -> None:
    query = json.dumps(
        {"project": "p", "region": "us-central1", "gateway": "streamgate-gateway"}
    )
    missing = run_script(fake_api, "describe", stdin=query)
    assert missing.returncode == 0, missing.stderr
    assert json.loads(missing.stdout)["exists"] == "false"
    run_script(fake_api, "ensure", STREAMGATE_GW_API_CONFIG=CONFIG_1)
    found = json.loads(run_script(fake_api, "describe", stdin=query).stdout)
    assert found["effective_streaming_mode"] == "EFFECTIVE_STREAMING_MODE_ENABLED"
    assert found["default_hostname"] == "streamgate-gateway-abc.uc.gateway.dev"
    assert all(isinstance(v, str) for v in found.values())  # the external protocol
    assert run_script(fake_api, "delete").returncode == 0
    assert GATEWAY_NAME not in FakeApiGateway.gateways
    assert run_script(fake_api, "delete").returncode == 0  # already gone


def test_script_reports_missing_settings(fake_api: str) -> None:
    result = run_script(fake_api, "ensure")
    assert result.returncode == 1
    assert "STREAMGATE_GW_API_CONFIG" in result.stderr
    assert run_script(fake_api, "bogus").returncode == 1
