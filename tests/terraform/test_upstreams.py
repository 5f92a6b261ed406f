"""terraform/ passes the upstream list on both clouds, in the shape lib/config.py reads, with its keys' secrets.

The list's JSON is the stacks' own expression, evaluated by `terraform console` in a scratch module
(the stack's variables and the list's locals; no provider is needed for them), then read by
`Settings.from_env` as the gateway reads it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lib.config import Settings, UpstreamSpec
from tests.support.hcl import TERRAFORM, load_stack

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:streamgate-upstream-"
TWO = 'upstreams = [{kind = "vertex", project = "other", location = "europe-west4"}, {kind = "gemini", name = "paid", base_url = "http://127.0.0.1:9"}]'


def first_locals(stack: str, stand_in: dict[str, str]) -> str:
    """upstreams.tf's locals blocks that build the list, with resource references stood in."""
    text = (TERRAFORM / stack / "upstreams.tf").read_text()
    blocks = re.findall(r"^locals \{\n.*?^\}\n", text, flags=re.DOTALL | re.MULTILINE)
    text = "".join(
        b for b in blocks if "upstream_list" in b or "listed_upstreams =" in b
    )
    for reference, value in stand_in.items():
        text = text.replace(reference, value)
    return text


def console(
    tmp_path: Path, stack: str, tfvars: str, expression: str, stand_in=None
) -> subprocess.CompletedProcess:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform binary not on PATH")
    shutil.copy(TERRAFORM / stack / "variables.tf", tmp_path / "variables.tf")
    (tmp_path / "list.tf").write_text(first_locals(stack, stand_in or {}))
    (tmp_path / "test.tfvars").write_text(tfvars + "\n")
    (tmp_path / "cli.tfrc").write_text("")
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(tmp_path / "cli.tfrc")}
    return subprocess.run(
        [binary, "console", "-no-color", "-var-file=test.tfvars"],
        cwd=tmp_path,
        env=env,
        input=expression + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def last_line(result: subprocess.CompletedProcess) -> str:
    """What the console printed for the expression (its last line; warnings come first)."""
    return result.stdout.strip().splitlines()[-1]


def listed(result: subprocess.CompletedProcess) -> tuple[UpstreamSpec, ...]:
    assert result.returncode == 0, result.stderr
    raw = json.loads(last_line(result))
    env = json.loads(raw)
    return Settings.from_env(env).upstreams


GCP_VARS = 'project_id = "proj"\nregion = "us-central1"\n'
AWS_VARS = ""
AWS_STAND_IN = {
    "aws_secretsmanager_secret.upstream_key[u.name].arn": '"' + ARN + '${u.name}-key"',
    "one(aws_secretsmanager_secret.google_credentials[*].arn)": '"' + ARN + 'creds"',
}


def test_gcp_passes_the_list_and_names_each_key_by_its_variable(tmp_path):
    result = console(
        tmp_path, "gcp", GCP_VARS + TWO, "jsonencode(local.upstreams_environment)"
    )
    assert listed(result) == (
        UpstreamSpec("vertex", "vertex-1", "other", "europe-west4"),
        UpstreamSpec(
            "gemini",
            "paid",
            base_url="http://127.0.0.1:9",
            api_key_env="STREAMGATE_UPSTREAM_KEY_2",
        ),
    )


def test_gcp_vertex_upstreams_default_to_the_stacks_project(tmp_path):
    vars_ = (
        GCP_VARS
        + 'upstreams = [{kind = "vertex"}, {kind = "vertex", name = "eu", location = "eu"}]'
    )
    result = console(tmp_path, "gcp", vars_, "jsonencode(local.upstreams_environment)")
    assert [(s.project, s.location) for s in listed(result)] == [
        ("proj", "global"),
        ("proj", "eu"),
    ]


def test_aws_passes_the_list_and_names_each_key_by_its_secret(tmp_path):
    vars_ = TWO
    result = console(
        tmp_path,
        "aws",
        AWS_VARS + vars_,
        "jsonencode(local.upstreams_environment)",
        AWS_STAND_IN,
    )
    assert listed(result) == (
        UpstreamSpec("vertex", "vertex-1", "other", "europe-west4"),
        UpstreamSpec(
            "gemini",
            "paid",
            base_url="http://127.0.0.1:9",
            api_key_secret=ARN + "paid-key",
        ),
    )
    env = json.loads(json.loads(last_line(result)))
    assert env["STREAMGATE_GOOGLE_CREDENTIALS_SECRET"] == ARN + "creds"


@pytest.mark.parametrize("stack", ["gcp", "aws"])
def test_an_empty_list_sets_nothing_and_the_single_upstream_rules(tmp_path, stack):
    vars_ = GCP_VARS if stack == "gcp" else AWS_VARS
    stand_in = AWS_STAND_IN if stack == "aws" else None
    result = console(
        tmp_path, stack, vars_, "jsonencode(local.upstreams_environment)", stand_in
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(json.loads(last_line(result))) == {}


@pytest.mark.parametrize("stack", ["gcp", "aws"])
@pytest.mark.parametrize(
    ("upstreams", "reason"),
    [
        ('[{kind = "echo"}]', "kind must be vertex or gemini"),
        ('[{kind = "gemini", name = "Paid!"}]', "lowercase letters"),
        (
            '[{kind = "gemini", name = "a"}, {kind = "gemini", name = "a"}]',
            "its own name",
        ),
        ('[{kind = "gemini", project = "p"}]', "no project or location"),
    ],
)
def test_the_variable_refuses_a_list_the_gateway_would_refuse(
    tmp_path, stack, upstreams, reason
):
    vars_ = (GCP_VARS if stack == "gcp" else AWS_VARS) + f"upstreams = {upstreams}"
    stand_in = AWS_STAND_IN if stack == "aws" else None
    result = console(tmp_path, stack, vars_, "local.upstream_list", stand_in)
    assert result.returncode != 0
    assert reason in re.sub(r"[│\s]+", " ", result.stderr)


def test_aws_requires_a_vertex_upstreams_project(tmp_path):
    result = console(
        tmp_path,
        "aws",
        'upstreams = [{kind = "vertex"}]',
        "local.upstream_list",
        AWS_STAND_IN,
    )
    assert result.returncode != 0
    assert "needs its project" in re.sub(r"[│\s]+", " ", result.stderr)


def test_both_stacks_put_the_list_in_every_functions_environment():
    gcp, aws = load_stack("gcp")["locals"], load_stack("aws")["locals"]
    assert "local.upstreams_environment" in gcp["environment"]
    assert "local.upstreams_secret_environment" in gcp["secret_environment"]
    assert "local.upstreams_environment" in aws["environment"]


def test_gcp_injects_each_gemini_key_as_the_variable_its_entry_names():
    locals_ = load_stack("gcp")["locals"]
    assert "u.key_env" in locals_["upstreams_secret_environment"]
    assert "apiKeyEnv = u.key_env" in (TERRAFORM / "gcp/upstreams.tf").read_text()
    assert "local.upstreams_secrets" in locals_["function_secrets"]
    assert "google_secret_manager_secret.upstream_key" in locals_["upstreams_secrets"]


def test_gcp_lets_the_function_use_vertex_in_each_listed_project():
    resources = load_stack("gcp")["resource"]
    member = resources["google_project_iam_member"]["listed_vertex_user"]
    assert member["for_each"] == "${local.listed_vertex_projects}"
    assert member["role"] == "roles/aiplatform.user"
    assert "google_service_account.function.email" in member["member"]
    service = resources["google_project_service"]["listed_vertex"]
    assert service["service"] == "aiplatform.googleapis.com"


def test_aws_may_read_each_listed_key_and_the_google_credentials():
    blocks = load_stack("aws")
    assert (
        "aws_secretsmanager_secret.upstream_key"
        in blocks["locals"]["function_secret_arns"]
    )
    secret = blocks["resource"]["aws_secretsmanager_secret"]
    assert secret["upstream_key"]["kms_key_id"] == "${aws_kms_key.this.arn}"
    assert "local.lists_vertex" in secret["google_credentials"]["count"]
