locals {
  prefix = var.prefix

  # One entry per route family of lib/routes.py: the functions-framework target (FAMILY_TARGETS)
  # and the literal path prefixes the family owns. The exact paths come from the route table
  # through openapi.yaml.tftpl; tests/test_terraform.py keeps this map in step with the code.
  routes = {
    gemini = {
      entry_point   = "gemini_stream"
      path_prefixes = ["/v1/models", "/v1beta"]
    }
    platform = {
      entry_point   = "platform_stream"
      path_prefixes = ["/api"]
    }
    vertex = {
      entry_point   = "vertex_stream"
      path_prefixes = ["/v1/projects", "/v1/publishers", "/v1beta1"]
    }
  }

  gateway_region = coalesce(var.gateway.region, var.region)
  source_dir     = coalesce(var.source_dir, abspath("${path.module}/../.."))
  vertex_project = coalesce(var.vertex.project, var.project_id)

  # The zip holds what the buildpack needs (main.py, requirements.txt, lib/, handlers/).
  source_excludes = [
    "**/__pycache__", "**/*.pyc", ".ci", ".git", ".hypothesis", ".local", ".pytest_cache",
    ".ruff_cache", ".venv", ".venv-*", "bench", "build", "dist", "docs", "terraform", "tests",
    "tools", "requirements-dev.txt",
  ]

  apis = merge(
    {
      for service in [
        "apigateway.googleapis.com", "artifactregistry.googleapis.com",
        "cloudbuild.googleapis.com", "cloudfunctions.googleapis.com", "iam.googleapis.com",
        "logging.googleapis.com", "run.googleapis.com", "secretmanager.googleapis.com",
        "servicecontrol.googleapis.com", "servicemanagement.googleapis.com",
        "storage.googleapis.com",
      ] : service => var.project_id
    },
    var.upstream == "vertex" ? { "aiplatform.googleapis.com" = local.vertex_project } : {},
    local.limits_redis ? { "compute.googleapis.com" = var.project_id, "redis.googleapis.com" = var.project_id } : {},
  )

  # Environment of every function: the variables lib/config.py reads. FUNCTION_USE_ASGI serves
  # main.py's coroutines on functions-framework's ASGI mode (one event loop per instance). A stream
  # ends with a well-formed error element 5 s before Cloud Run's request timeout would cut it, and
  # on SIGTERM open streams get 8 s, inside Cloud Run's 10 s before SIGKILL.
  common_environment = {
    FUNCTION_USE_ASGI            = "true"
    STREAMGATE_CORS_ORIGINS      = join(",", var.runtime.cors_origins)
    STREAMGATE_IDLE_TIMEOUT_S    = tostring(var.runtime.idle_timeout_s)
    STREAMGATE_KEYS              = google_secret_manager_secret.keys.id
    STREAMGATE_KEYS_TTL_S        = tostring(var.runtime.keys_ttl_s)
    STREAMGATE_LEASE_TTL_S       = tostring(var.limits.lease_ttl_s)
    STREAMGATE_LIMITS_TIMEOUT_S  = tostring(var.limits.timeout_s)
    STREAMGATE_REQUEST_TIMEOUT_S = tostring(max(var.function.timeout_seconds - 5, 1))
    STREAMGATE_SHUTDOWN_GRACE_S  = "8"
    STREAMGATE_UPSTREAM          = var.upstream
  }
  upstream_environment = {
    echo   = {}
    gemini = {}
    vertex = {
      STREAMGATE_VERTEX_LOCATION = var.vertex.location
      STREAMGATE_VERTEX_PROJECT  = local.vertex_project
    }
  }
  # Injected by Cloud Run from Secret Manager (variable name => secret id, version "latest").
  upstream_secret_environment = {
    echo   = {}
    gemini = { STREAMGATE_GEMINI_API_KEY = one(google_secret_manager_secret.gemini_api_key[*].secret_id) }
    vertex = {}
  }
  # STREAMGATE_LIMITS with the Redis store: its URL holds the AUTH string, so it is a secret
  # (limits.tf). Unset with the memory store, which is the code's default.
  limits_secret_environment = local.limits_redis ? {
    STREAMGATE_LIMITS = one(google_secret_manager_secret.limits_url[*].secret_id)
  } : {}
  environment        = merge(var.extra_environment, local.common_environment, local.upstream_environment[var.upstream], local.upstreams_environment)
  secret_environment = merge(local.upstream_secret_environment[var.upstream], local.limits_secret_environment, local.upstreams_secret_environment)

  # The secrets the function's service account may read: exactly these.
  function_secrets = merge(
    { keys = google_secret_manager_secret.keys.secret_id },
    var.upstream == "gemini" ? { gemini_api_key = one(google_secret_manager_secret.gemini_api_key[*].secret_id) } : {},
    local.limits_redis ? { limits_url = one(google_secret_manager_secret.limits_url[*].secret_id) } : {},
    local.upstreams_secrets,
  )

  # The per-key limits store (limits.tf). Its URL for redis-py: AUTH string, TLS ("rediss"), database
  # 0, and the instance's own CA certificates as ssl_ca_data, so the chain must lead to this
  # instance's CA. The host name check is off: clients connect to the instance's IP address, which
  # Memorystore's server certificate is not known to carry as a subjectAltName (it has been reported
  # in the CN, which TLS clients do not match), while the per-instance CA already pins the server.
  limits_redis = var.limits.store == "redis"
  limits_redis_url = one([
    for r in google_redis_instance.limits : format(
      "rediss://:%s@%s:%d/0?ssl_check_hostname=false&ssl_ca_data=%s",
      urlencode(r.auth_string), r.host, r.port, urlencode(join("\n", r.server_ca_certs[*].cert))
    )
  ])

  # The OpenAPI spec with each family's function URL as backend address and JWT audience.
  openapi_spec = templatefile("${path.module}/openapi.yaml.tftpl", {
    for family, _ in local.routes : "backend_${family}" => google_cloudfunctions2_function.family[family].service_config[0].uri
  })

  streaming_gateway_id     = "${local.prefix}gateway"
  streaming_gateway_script = abspath("${path.module}/scripts/streaming_gateway.py")
  gateway_hostname = coalesce(
    one(data.external.streaming_gateway[*].result.default_hostname),
    one(google_api_gateway_gateway.buffered[*].default_hostname),
  )
}
