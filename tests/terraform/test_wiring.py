"""terraform/ stays wired to the code: the route table, main.py's targets and the env the runtime reads."""

from __future__ import annotations

import ast
import re
from typing import Any

import pytest

from lib.routes import FAMILY_TARGETS, ROUTES
from tests.support.hcl import TERRAFORM, load_stack
from tests.support.paths import ROOT

UPSTREAMS = ("echo", "vertex", "gemini")

# What each stack must set for the code to run (lib/config.py and the runtime contract).
REQUIRED_ENV = {
    "STREAMGATE_UPSTREAM",
    "STREAMGATE_KEYS",
    "FUNCTION_USE_ASGI",
    "STREAMGATE_REQUEST_TIMEOUT_S",
}
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
    "STREAMGATE_SHUTDOWN_GRACE_S",
    "STREAMGATE_VERTEX_PROJECT",
    "STREAMGATE_VERTEX_LOCATION",
    "STREAMGATE_GEMINI_API_KEY",
    "STREAMGATE_GEMINI_API_KEY_SECRET",
    "STREAMGATE_GOOGLE_CREDENTIALS_SECRET",
    "STREAMGATE_LIMITS",
    "STREAMGATE_LEASE_TTL_S",
    "STREAMGATE_LIMITS_TIMEOUT_S",
    "AWS_LAMBDA_EXEC_WRAPPER",
    "AWS_LWA_INVOKE_MODE",
    "PORT",
    "FUNCTION_TARGET",
}


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
    tree = ast.parse((ROOT / "main.py").read_text())
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
    if not (ROOT / "main.py").exists():
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
    # With the Redis limits store, STREAMGATE_LIMITS is a secret too (test_limits.py).
    secret = set(locals_["upstream_secret_environment"][upstream]) | {
        "STREAMGATE_LIMITS"
    }
    assert REQUIRED_ENV | REQUIRED_BY_UPSTREAM["gcp"][upstream] <= plain | secret
    assert plain | secret <= KNOWN_ENV
    assert not plain & secret
    assert "local.upstream_environment[var.upstream]" in locals_["environment"]
    assert "local.common_environment" in locals_["environment"]
    assert locals_["secret_environment"] == (
        "${merge(local.upstream_secret_environment[var.upstream], "
        "local.limits_secret_environment, local.upstreams_secret_environment)}"
    )
    function = blocks["resource"]["google_cloudfunctions2_function"]["family"]
    (service,) = function["service_config"]
    assert service["environment_variables"] == "${local.environment}"
    (secret_env,) = [
        d["secret_environment_variables"]
        for d in service["dynamic"]
        if "secret_environment_variables" in d
    ]
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


@pytest.mark.parametrize(
    "cloud, timeout",
    [("gcp", "var.function.timeout_seconds"), ("aws", "var.lambda.timeout")],
)
def test_functions_serve_asgi_and_end_streams_before_the_platform_timeout(
    cloud: str, timeout: str
) -> None:
    environment = load_stack(cloud)["locals"]["common_environment"]
    assert environment["FUNCTION_USE_ASGI"] == "true"
    assert (
        environment["STREAMGATE_REQUEST_TIMEOUT_S"]
        == f"${{tostring(max({timeout} - 5, 1))}}"
    )


def test_cloud_run_gets_8_s_of_grace_inside_its_10_s_before_sigkill() -> None:
    environment = load_stack("gcp")["locals"]["common_environment"]
    assert environment["STREAMGATE_SHUTDOWN_GRACE_S"] == "8"


def test_the_per_instance_concurrency_is_the_documented_one() -> None:
    blocks = load_stack("gcp")
    concurrency = "var.function.max_instance_request_concurrency"
    function = blocks["resource"]["google_cloudfunctions2_function"]["family"]
    (service,) = function["service_config"]
    assert service["max_instance_request_concurrency"] == f"${{{concurrency}}}"
    variable_type = blocks["variable"]["function"]["type"]
    default = re.search(
        r"max_instance_request_concurrency = optional\(number, (\d+)\)", variable_type
    )
    assert default is not None
    documented = (ROOT / "README.md").read_text()
    assert f"{default.group(1)} concurrent requests per instance" in documented
    assert 'available_cpu = optional(string, "1")' in variable_type
    assert "min_instance_count = optional(number" in variable_type
