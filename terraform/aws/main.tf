locals {
  prefix = var.prefix

  # One entry per route family of lib/routes.py: the functions-framework target (FAMILY_TARGETS,
  # passed to run.sh as FUNCTION_TARGET) and the literal path prefixes the family owns; the REST
  # API sends "<prefix>/{proxy+}" to the family's function. tests/test_terraform.py keeps this
  # map in step with the route table.
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

  package_path      = startswith(var.package_path, "/") ? var.package_path : abspath("${path.module}/${var.package_path}")
  adapter_layer_arn = coalesce(var.adapter_layer_arn, "arn:aws:lambda:${var.region}:753240598075:layer:LambdaAdapterLayerX86:27")
  account_id        = data.aws_caller_identity.current.account_id

  # Streaming: the Web Adapter (layer + exec wrapper) starts run.sh's server on PORT and relays
  # its chunked response as a Lambda response stream. Buffered: the plain Lambda handler.
  handler = var.streaming ? "run.sh" : "handlers.aws_lambda.lambda_handler"
  streaming_environment = var.streaming ? {
    AWS_LAMBDA_EXEC_WRAPPER = "/opt/bootstrap"
    AWS_LWA_INVOKE_MODE     = "response_stream"
    # A TCP readiness check: an HTTP probe would build the gateway and log a request line.
    AWS_LWA_READINESS_CHECK_PROTOCOL = "tcp"
    PORT                             = "8080"
  } : {}

  # Environment of every function: the variables lib/config.py reads. FUNCTION_USE_ASGI serves
  # main.py's coroutines on functions-framework's ASGI mode (run.sh sets it too). A stream ends with
  # a well-formed error element 5 s before the Lambda timeout would cut it.
  common_environment = {
    FUNCTION_USE_ASGI            = "true"
    STREAMGATE_CORS_ORIGINS      = join(",", var.runtime.cors_origins)
    STREAMGATE_IDLE_TIMEOUT_S    = tostring(var.runtime.idle_timeout_s)
    STREAMGATE_KEYS              = aws_secretsmanager_secret.keys.arn
    STREAMGATE_KEYS_TTL_S        = tostring(var.runtime.keys_ttl_s)
    STREAMGATE_LEASE_TTL_S       = tostring(var.limits.lease_ttl_s)
    STREAMGATE_LIMITS            = local.limits_dynamodb ? "dynamodb://${one(aws_dynamodb_table.limits[*].name)}" : "memory"
    STREAMGATE_LIMITS_TIMEOUT_S  = tostring(var.limits.timeout_s)
    STREAMGATE_REQUEST_TIMEOUT_S = tostring(max(var.lambda.timeout - 5, 1))
    STREAMGATE_UPSTREAM          = var.upstream
  }
  upstream_environment = {
    echo   = {}
    gemini = { STREAMGATE_GEMINI_API_KEY_SECRET = one(aws_secretsmanager_secret.gemini_api_key[*].arn) }
    vertex = {
      STREAMGATE_GOOGLE_CREDENTIALS_SECRET = one(aws_secretsmanager_secret.google_credentials[*].arn)
      STREAMGATE_VERTEX_LOCATION           = var.vertex.location
      STREAMGATE_VERTEX_PROJECT            = var.vertex.project
    }
  }
  # The per-key limits store (limits.tf): a table name is no secret, so a plain variable.
  limits_dynamodb = var.limits.store == "dynamodb"

  environment = merge(var.extra_environment, local.common_environment, local.upstream_environment[var.upstream], local.upstreams_environment, local.streaming_environment)

  # The secrets the functions may read: exactly these.
  function_secret_arns = concat(
    [aws_secretsmanager_secret.keys.arn],
    aws_secretsmanager_secret.gemini_api_key[*].arn,
    aws_secretsmanager_secret.google_credentials[*].arn,
    values(aws_secretsmanager_secret.upstream_key)[*].arn,
  )

  # REST API resource tree: first segments ("v1"), two-segment prefixes ("v1/models"), then a
  # "{proxy+}" under every prefix. Prefixes have at most two segments (tested).
  rest_prefixes = var.rest_api.enabled ? merge([
    for family, route in local.routes : { for p in route.path_prefixes : trimprefix(p, "/") => family }
  ]...) : {}
  rest_first_segments = toset([for p in keys(local.rest_prefixes) : split("/", p)[0]])
  rest_second_level   = toset([for p in keys(local.rest_prefixes) : p if length(split("/", p)) == 2])
  rest_prefix_ids = merge(
    { for path, r in aws_api_gateway_resource.first : path => r.id },
    { for path, r in aws_api_gateway_resource.second : path => r.id },
  )
}
