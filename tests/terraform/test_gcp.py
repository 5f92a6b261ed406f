"""terraform/gcp: functions, source zip, secrets, IAM and the API Gateway, as the HCL declares them."""

from __future__ import annotations

from tests.support.hcl import SCRIPT, load_stack


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
    # The one version: the Redis limits store's URL, whose AUTH string Memorystore makes and
    # the provider keeps in the state anyway (google_redis_instance.auth_string).
    versions = blocks["resource"]["google_secret_manager_secret_version"]
    assert set(versions) == {"limits_url"}
    assert versions["limits_url"]["secret_data"] == "${local.limits_redis_url}"
    assert "google_redis_instance.limits" in blocks["locals"]["limits_redis_url"]
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


def test_gcp_vertex_role_only_for_the_vertex_upstreams() -> None:
    blocks = load_stack("gcp")
    bindings = blocks["resource"]["google_project_iam_member"]
    # The single vertex upstream's, and one per listed Vertex upstream's project (test_upstreams.py).
    assert set(bindings) == {"vertex_user", "listed_vertex_user"}
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
