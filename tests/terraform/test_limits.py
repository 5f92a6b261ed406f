"""terraform/ and the limits store agree: DynamoDB schema, IAM actions, the Redis URL, AUTH, TLS, egress.

The table's key names and TTL attribute come from lib/limits/dynamodb_table.py itself (its
`create_table` is run against a recording fake), the IAM actions from the calls that
lib/limits/dynamodb.py makes, and the Redis URL is parsed by the redis-py the store uses.
"""

from __future__ import annotations

import ast
import re
import ssl
from typing import Any
from urllib.parse import quote_plus

from redis.asyncio.connection import ConnectionPool, SSLConnection, parse_url

from lib.limits import dynamodb_table
from lib.limits.chooser import DYNAMODB_PREFIX, store_kind
from tests.support.hcl import TERRAFORM, load, load_stack
from tests.support.paths import ROOT

STORE_MODULE = ROOT / "lib/limits/dynamodb.py"


class RecordingDynamoDB:
    """Just enough of a boto3 DynamoDB client for `create_table`: it keeps each call's arguments."""

    def __init__(self) -> None:
        self.calls: dict[str, dict[str, Any]] = {}

    def create_table(self, **kwargs: Any) -> None:
        self.calls["create_table"] = kwargs

    def get_waiter(self, name: str) -> RecordingDynamoDB:
        assert name == "table_exists"
        return self

    def wait(self, **kwargs: Any) -> None:
        self.calls["wait"] = kwargs

    def update_time_to_live(self, **kwargs: Any) -> None:
        self.calls["update_time_to_live"] = kwargs


def table_as_the_code_makes_it() -> dict[str, Any]:
    client = RecordingDynamoDB()
    dynamodb_table.create_table("t", dynamodb=client)
    return client.calls


def store_calls() -> set[str]:
    """The DynamoDB operations the store calls: every `self._call("<operation>", ...)`."""
    found = set()
    for node in ast.walk(ast.parse(STORE_MODULE.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "_call"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(node.args[0].value)
    return found


def iam_action(operation: str) -> str:
    return "dynamodb:" + "".join(part.title() for part in operation.split("_"))


def test_dynamodb_table_has_the_codes_keys_and_ttl() -> None:
    calls = table_as_the_code_makes_it()
    schema = {
        k["KeyType"]: k["AttributeName"] for k in calls["create_table"]["KeySchema"]
    }
    types = {
        a["AttributeName"]: a["AttributeType"]
        for a in calls["create_table"]["AttributeDefinitions"]
    }
    ttl = calls["update_time_to_live"]["TimeToLiveSpecification"]
    table = load_stack("aws")["resource"]["aws_dynamodb_table"]["limits"]
    assert table["hash_key"] == schema["HASH"]
    assert table["range_key"] == schema["RANGE"]
    assert {a["name"]: a["type"] for a in table["attribute"]} == types
    assert table["billing_mode"] == calls["create_table"]["BillingMode"]
    (table_ttl,) = table["ttl"]
    assert table_ttl == {"attribute_name": ttl["AttributeName"], "enabled": True}
    # The items the store writes use exactly these names.
    assert set(dynamodb_table.state_key("k")) == {schema["HASH"], schema["RANGE"]}
    item = dynamodb_table.state_item("k", "{}", 1)
    assert ttl["AttributeName"] in item


def test_dynamodb_table_is_on_demand_recoverable_and_uses_the_stack_key() -> None:
    blocks = load_stack("aws")
    table = blocks["resource"]["aws_dynamodb_table"]["limits"]
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["count"] == "${local.limits_dynamodb ? 1 : 0}"
    (recovery,) = table["point_in_time_recovery"]
    assert recovery["enabled"] is True
    (encryption,) = table["server_side_encryption"]
    assert encryption == {"enabled": True, "kms_key_arn": "${aws_kms_key.this.arn}"}
    # The role's Decrypt on that key is what reading the table needs.
    document = blocks["data"]["aws_iam_policy_document"]["function"]
    key = next(s for s in document["statement"] if s["sid"] == "Key")
    assert key["resources"] == ["${aws_kms_key.this.arn}"]


def test_lambda_role_may_make_exactly_the_calls_the_store_makes() -> None:
    operations = store_calls()
    assert {"get_item", "put_item"} <= operations  # the parse found the store's calls
    document = load_stack("aws")["data"]["aws_iam_policy_document"]["function"]
    (dynamic,) = document["dynamic"]
    statement = dynamic["statement"]
    assert statement["for_each"] == "${local.limits_dynamodb ? [1] : []}"
    (content,) = statement["content"]
    assert content["sid"] == "LimitsTable"
    assert set(content["actions"]) == {iam_action(op) for op in operations}
    assert content["resources"] == "${aws_dynamodb_table.limits[*].arn}"
    # Nothing else in the stack grants DynamoDB to the functions.
    for other in document["statement"]:
        assert not any(a.startswith("dynamodb:") for a in other["actions"])


def test_key_admins_may_read_usage_only() -> None:
    document = load_stack("aws")["data"]["aws_iam_policy_document"]["key_admin"]
    (dynamic,) = document["dynamic"]
    (content,) = dynamic["statement"]["content"]
    assert content["actions"] == ["dynamodb:Query"]
    assert content["resources"] == "${aws_dynamodb_table.limits[*].arn}"


def test_aws_functions_name_the_table_in_streamgate_limits() -> None:
    blocks = load_stack("aws")
    environment = blocks["locals"]["common_environment"]
    value = environment["STREAMGATE_LIMITS"]
    assert value == (
        '${local.limits_dynamodb ? "'
        + DYNAMODB_PREFIX
        + '${one(aws_dynamodb_table.limits[*].name)}" : "memory"}'
    )
    assert store_kind(DYNAMODB_PREFIX + "streamgate-limits") == "dynamodb"
    assert store_kind("memory") == "memory"
    assert blocks["locals"]["limits_dynamodb"] == '${var.limits.store == "dynamodb"}'
    # On by default: on demand, an idle table costs nothing.
    assert (
        'store = optional(string, "dynamodb")' in blocks["variable"]["limits"]["type"]
    )
    assert blocks["output"]["limits_table_name"]


def test_both_clouds_pass_the_lease_ttl_and_the_store_timeout() -> None:
    chooser = (ROOT / "lib/limits/chooser.py").read_text()
    for cloud in ("gcp", "aws"):
        environment = load_stack(cloud)["locals"]["common_environment"]
        assert environment["STREAMGATE_LEASE_TTL_S"] == (
            "${tostring(var.limits.lease_ttl_s)}"
        )
        assert environment["STREAMGATE_LIMITS_TIMEOUT_S"] == (
            "${tostring(var.limits.timeout_s)}"
        )
    for name in (
        "STREAMGATE_LIMITS",
        "STREAMGATE_LEASE_TTL_S",
        "STREAMGATE_LIMITS_TIMEOUT_S",
    ):
        assert f'"{name}"' in chooser, f"lib/limits/chooser.py no longer reads {name}"


def test_gcp_redis_has_auth_and_tls() -> None:
    blocks = load_stack("gcp")
    redis = blocks["resource"]["google_redis_instance"]["limits"]
    assert redis["count"] == "${local.limits_redis ? 1 : 0}"
    assert redis["auth_enabled"] is True
    assert redis["transit_encryption_mode"] == "SERVER_AUTHENTICATION"
    assert redis["authorized_network"] == "${var.limits.network}"
    assert redis["region"] == "${var.region}"
    assert redis["redis_configs"] == {"maxmemory-policy": "noeviction"}
    assert blocks["locals"]["limits_redis"] == '${var.limits.store == "redis"}'
    # Off by default: an always-on instance is billed by the hour.
    assert 'store = optional(string, "memory")' in blocks["variable"]["limits"]["type"]


def test_gcp_function_gets_private_ranges_egress_with_the_store() -> None:
    blocks = load_stack("gcp")
    function = blocks["resource"]["google_cloudfunctions2_function"]["family"]
    (service,) = function["service_config"]
    assert service["direct_vpc_egress"] == (
        '${local.limits_redis ? "VPC_EGRESS_PRIVATE_RANGES_ONLY" : null}'
    )
    (interface,) = [
        d["direct_vpc_network_interface"]
        for d in service["dynamic"]
        if "direct_vpc_network_interface" in d
    ]
    assert interface["for_each"] == "${local.limits_redis ? [var.limits] : []}"
    (content,) = interface["content"]
    assert content["network"] == "${direct_vpc_network_interface.value.network}"
    assert content["subnetwork"] == "${direct_vpc_network_interface.value.subnetwork}"
    assert "vpc_connector" not in service  # exclusive with Direct VPC egress
    # Direct VPC egress on cloudfunctions2 needs google provider 7.21 or later.
    (terraform,) = load(TERRAFORM / "gcp/versions.tf")["terraform"]
    (providers,) = terraform["required_providers"]
    low = re.match(r">= ([\d.]+),", providers["google"]["version"])
    assert low is not None
    assert tuple(int(p) for p in low.group(1).split(".")) >= (7, 21)


def test_gcp_streamgate_limits_is_a_secret_of_the_whole_url() -> None:
    blocks = load_stack("gcp")
    locals_ = blocks["locals"]
    assert locals_["limits_secret_environment"] == (
        "${local.limits_redis ? {STREAMGATE_LIMITS = "
        "one(google_secret_manager_secret.limits_url[*].secret_id)} : {}}"
    )
    assert "local.limits_secret_environment" in locals_["secret_environment"]
    assert "STREAMGATE_LIMITS" not in locals_["common_environment"]
    assert "google_secret_manager_secret.limits_url" in locals_["function_secrets"]
    version = blocks["resource"]["google_secret_manager_secret_version"]["limits_url"]
    assert version["secret_data"] == "${local.limits_redis_url}"
    function = blocks["resource"]["google_cloudfunctions2_function"]["family"]
    assert (
        "${google_secret_manager_secret_version.limits_url}" in function["depends_on"]
    )


def render_redis_url(template: str, auth: str, host: str, port: int, ca: str) -> str:
    """What Terraform's format() and urlencode() make of limits_redis_url for these values."""
    return template % (quote_plus(auth, safe=""), host, port, quote_plus(ca, safe=""))


def test_gcp_redis_url_is_one_the_store_client_reads() -> None:
    expression = load_stack("gcp")["locals"]["limits_redis_url"]
    match = re.search(r'format\(\s*"([^"]+)"', expression)
    assert match is not None, expression
    assert "urlencode(r.auth_string), r.host, r.port, urlencode(join(" in expression
    assert "r.server_ca_certs[*].cert" in expression
    ca = "-----BEGIN CERTIFICATE-----\nMIIB+/x=\n-----END CERTIFICATE-----"
    url = render_redis_url(match.group(1), "a+b/c=d", "10.0.0.3", 6378, ca)
    assert store_kind(url) == "redis"
    parsed = parse_url(url)
    assert parsed["connection_class"] is SSLConnection  # rediss: TLS
    assert parsed["password"] == "a+b/c=d"  # AUTH
    assert (parsed["host"], parsed["port"], parsed["db"]) == ("10.0.0.3", 6378, 0)
    assert parsed["ssl_ca_data"] == ca  # the instance's own CA
    assert parsed["ssl_check_hostname"] is False
    # The store's client takes these as TLS settings: the chain must lead to that CA.
    connection = ConnectionPool.from_url(url).make_connection()
    assert connection.ssl_context.cert_reqs == ssl.CERT_REQUIRED
    assert connection.ssl_context.ca_data == ca
    assert connection.ssl_context.check_hostname is False
