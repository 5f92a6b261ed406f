# One Cloud Run function (gen2) per route family, each running its own functions-framework target.
resource "google_cloudfunctions2_function" "family" {
  #checkov:skip=CKV_GCP_124:API Gateway reaches the function over the internet (there is no internal path from a gateway); only the gateway's service account holds run.invoker, so unauthenticated calls get 403.
  for_each = local.routes

  name        = "${local.prefix}${each.key}"
  project     = var.project_id
  location    = var.region
  description = "streamgate ${each.key} routes (target ${each.value.entry_point})"
  labels      = var.labels

  build_config {
    runtime         = "python312"
    entry_point     = each.value.entry_point
    service_account = var.build_service_account == null ? null : "projects/${var.project_id}/serviceAccounts/${var.build_service_account}"

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_cpu                    = var.function.available_cpu
    available_memory                 = var.function.available_memory
    timeout_seconds                  = var.function.timeout_seconds
    max_instance_request_concurrency = var.function.max_instance_request_concurrency
    min_instance_count               = var.function.min_instance_count
    max_instance_count               = var.function.max_instance_count
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.function.email
    environment_variables            = local.environment

    # Only with the Redis limits store: Direct VPC egress reaches Memorystore's private address. For
    # private ranges only, so the calls to Google's APIs (Vertex AI, the Gemini API, Secret Manager)
    # still leave directly and need neither Cloud NAT nor Private Google Access.
    direct_vpc_egress = local.limits_redis ? "VPC_EGRESS_PRIVATE_RANGES_ONLY" : null

    dynamic "direct_vpc_network_interface" {
      for_each = local.limits_redis ? [var.limits] : []

      content {
        network    = direct_vpc_network_interface.value.network
        subnetwork = direct_vpc_network_interface.value.subnetwork
      }
    }

    dynamic "secret_environment_variables" {
      for_each = local.secret_environment

      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  # The service account must be able to read its secrets, and each secret injected as a variable
  # must have a version, when the revision starts.
  depends_on = [
    google_project_service.required,
    google_secret_manager_secret_iam_member.function,
    google_secret_manager_secret_version.limits_url,
  ]
}
