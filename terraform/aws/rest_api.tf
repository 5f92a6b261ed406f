# REST API: the API Gateway flavour that streams (integration response_transfer_mode STREAM,
# Lambda URI .../response-streaming-invocations). HTTP APIs (apigatewayv2) still buffer.
resource "aws_api_gateway_rest_api" "this" {
  count = var.rest_api.enabled ? 1 : 0

  name        = "${local.prefix}api"
  description = "streamgate: streamGenerateContent for the Gemini and Vertex AI paths"

  # Regional: a streamed response may idle 5 minutes (edge-optimized endpoints: 30 s).
  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_resource" "first" {
  for_each = local.rest_first_segments

  rest_api_id = aws_api_gateway_rest_api.this[0].id
  parent_id   = aws_api_gateway_rest_api.this[0].root_resource_id
  path_part   = each.key
}

resource "aws_api_gateway_resource" "second" {
  for_each = local.rest_second_level

  rest_api_id = aws_api_gateway_rest_api.this[0].id
  parent_id   = aws_api_gateway_resource.first[split("/", each.key)[0]].id
  path_part   = split("/", each.key)[1]
}

# "<prefix>/{proxy+}": a REST path part cannot be "{model}:verb", so the function parses the rest.
resource "aws_api_gateway_resource" "proxy" {
  for_each = local.rest_prefixes

  rest_api_id = aws_api_gateway_rest_api.this[0].id
  parent_id   = local.rest_prefix_ids[each.key]
  path_part   = "{proxy+}"
}

resource "aws_api_gateway_method" "proxy" {
  #checkov:skip=CKV_AWS_59:Clients present streamgate API keys, which the function checks itself (they are not API Gateway keys); an authorizer would add a second credential.
  #checkov:skip=CKV2_AWS_53:The function validates the path and the JSON body and answers with Google's error shape; a request validator would answer differently.
  for_each = local.rest_prefixes

  rest_api_id   = aws_api_gateway_rest_api.this[0].id
  resource_id   = aws_api_gateway_resource.proxy[each.key].id
  http_method   = "ANY"
  authorization = "NONE"
  request_parameters = {
    "method.request.path.proxy" = true
  }
}

resource "aws_api_gateway_integration" "proxy" {
  for_each = local.rest_prefixes

  rest_api_id             = aws_api_gateway_rest_api.this[0].id
  resource_id             = aws_api_gateway_resource.proxy[each.key].id
  http_method             = aws_api_gateway_method.proxy[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = var.streaming ? aws_lambda_function.family[each.value].response_streaming_invoke_arn : aws_lambda_function.family[each.value].invoke_arn
  response_transfer_mode  = var.streaming ? "STREAM" : "BUFFERED"
  timeout_milliseconds    = var.streaming ? 900000 : 29000
}

resource "aws_lambda_permission" "rest_api" {
  for_each = var.rest_api.enabled ? local.routes : {}

  statement_id  = "AllowRestApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.family[each.key].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this[0].execution_arn}/*"
}

resource "aws_api_gateway_deployment" "this" {
  count = var.rest_api.enabled ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.this[0].id

  triggers = {
    redeployment = sha1(jsonencode([
      local.rest_prefixes,
      [for r in aws_api_gateway_resource.proxy : r.id],
      [for m in aws_api_gateway_method.proxy : m.id],
      [for i in aws_api_gateway_integration.proxy : [i.id, i.uri, i.response_transfer_mode, i.timeout_milliseconds]],
    ]))
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [aws_api_gateway_integration.proxy]
}

resource "aws_cloudwatch_log_group" "rest_api" {
  #checkov:skip=CKV_AWS_338:Access logs of a stateless gateway; retention is var.log_retention_days (30 by default), raise it where policy asks for a year.
  count = var.rest_api.enabled ? 1 : 0

  name              = "/aws/apigateway/${local.prefix}api"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV_AWS_120:Streamed responses cannot be cached (API Gateway disables caching with response streaming).
  #checkov:skip=CKV2_AWS_51:The backends are Lambda functions invoked by API Gateway itself; a client certificate authenticates API Gateway to HTTP backends only.
  #checkov:skip=CKV2_AWS_29:No WAF by default: attach a web ACL (aws_wafv2_web_acl_association) to this stage where the account has one.
  count = var.rest_api.enabled ? 1 : 0

  rest_api_id          = aws_api_gateway_rest_api.this[0].id
  deployment_id        = aws_api_gateway_deployment.this[0].id
  stage_name           = var.rest_api.stage_name
  xray_tracing_enabled = true

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.rest_api[0].arn
    format = jsonencode({
      requestId          = "$context.requestId"
      ip                 = "$context.identity.sourceIp"
      requestTime        = "$context.requestTime"
      httpMethod         = "$context.httpMethod"
      path               = "$context.path"
      status             = "$context.status"
      responseLength     = "$context.responseLength"
      integrationLatency = "$context.integrationLatency"
    })
  }

  depends_on = [aws_api_gateway_account.this]
}

resource "aws_api_gateway_method_settings" "all" {
  #checkov:skip=CKV_AWS_225:Streamed responses cannot be cached.
  #checkov:skip=CKV_AWS_308:Caching is off (streamed responses cannot be cached), so there is no cache to encrypt.
  count = var.rest_api.enabled ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.this[0].id
  stage_name  = aws_api_gateway_stage.this[0].stage_name
  method_path = "*/*"

  settings {
    metrics_enabled    = true
    logging_level      = "ERROR"
    data_trace_enabled = false
    caching_enabled    = false
  }
}

# API Gateway writes logs with this region-wide role (an account setting, shared by all APIs).
resource "aws_iam_role" "api_gateway_logs" {
  count = var.rest_api.enabled && var.rest_api.manage_account_logging_role ? 1 : 0

  name        = "${local.prefix}apigateway-logs"
  description = "Lets API Gateway write CloudWatch logs in this region"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "apigateway.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "api_gateway_logs" {
  count = var.rest_api.enabled && var.rest_api.manage_account_logging_role ? 1 : 0

  role       = aws_iam_role.api_gateway_logs[0].name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "this" {
  count = var.rest_api.enabled && var.rest_api.manage_account_logging_role ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.api_gateway_logs[0].arn

  depends_on = [aws_iam_role_policy_attachment.api_gateway_logs]
}
