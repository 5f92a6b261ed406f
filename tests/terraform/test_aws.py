"""terraform/aws: the Lambdas, the streaming REST API and Function URLs, secrets and least privilege."""

from __future__ import annotations

from tests.support.hcl import load_stack


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
