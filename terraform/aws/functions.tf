resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_338:Request logs of a stateless gateway; retention is var.log_retention_days (30 by default), raise it where policy asks for a year.
  for_each = local.routes

  name              = "/aws/lambda/${local.prefix}${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

# One Lambda per route family, from the package zip.
resource "aws_lambda_function" "family" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously (API Gateway, Function URL); a dead-letter queue only receives failed asynchronous events.
  #checkov:skip=CKV_AWS_117:Calls Google's public APIs; a VPC would need a NAT gateway to reach them and adds nothing to this function's isolation.
  #checkov:skip=CKV_AWS_272:The zip is built by make package-aws and not signed; Lambda code signing needs an AWS Signer profile in the release pipeline.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is var.lambda.reserved_concurrency, unset by default: a new account's quota (10) cannot reserve any.
  for_each = local.routes

  function_name                  = "${local.prefix}${each.key}"
  description                    = "streamgate ${each.key} routes (target ${each.value.entry_point})"
  role                           = aws_iam_role.function.arn
  runtime                        = "python3.12"
  architectures                  = ["x86_64"]
  handler                        = local.handler
  layers                         = var.streaming ? [local.adapter_layer_arn] : []
  filename                       = local.package_path
  source_code_hash               = filebase64sha256(local.package_path)
  memory_size                    = var.lambda.memory_size
  timeout                        = var.lambda.timeout
  reserved_concurrent_executions = var.lambda.reserved_concurrency
  kms_key_arn                    = aws_kms_key.this.arn

  environment {
    variables = merge(local.environment, { FUNCTION_TARGET = each.value.entry_point })
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  lifecycle {
    precondition {
      condition     = var.upstream != "vertex" || var.vertex.project != null
      error_message = "upstream = \"vertex\" needs vertex.project (the Google Cloud project to bill)."
    }
  }

  depends_on = [aws_iam_role_policy.function]
}
