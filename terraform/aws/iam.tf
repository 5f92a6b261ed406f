resource "aws_iam_role" "function" {
  name        = "${local.prefix}function"
  description = "streamgate Lambda functions"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

# Least privilege: its own log streams, X-Ray, GetSecretValue on exactly the stack's secrets,
# the four item calls of the limits store on its table only, and Decrypt with the stack's key
# (secrets, encrypted environment variables, and the table, which DynamoDB encrypts with it).
data "aws_iam_policy_document" "function" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for group in aws_cloudwatch_log_group.function : "${group.arn}:*"]
  }

  statement {
    sid       = "Secrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.function_secret_arns
  }

  statement {
    sid       = "Key"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
  }

  # What lib/limits/dynamodb.py calls (tests/terraform/test_limits.py keeps the two equal): a key's
  # item (GetItem, conditional PutItem), usage rows (UpdateItem ADD) and the usage page (Query).
  dynamic "statement" {
    for_each = local.limits_dynamodb ? [1] : []

    content {
      sid       = "LimitsTable"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]
      resources = aws_dynamodb_table.limits[*].arn
    }
  }

  statement {
    # X-Ray's trace-upload actions have no resource-level permissions.
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "function" {
  name   = "${local.prefix}function"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}

# What the key CLI (python -m lib.keys) needs on the key document, to attach to the people or
# pipelines that manage keys (output key_admin_policy_json): read it, write a version under a
# staging label, move AWSCURRENT onto it, with the stack's key; and read the limits table's usage
# rows (`python -m lib.keys usage`).
data "aws_iam_policy_document" "key_admin" {
  statement {
    sid = "KeyDocument"
    actions = [
      "secretsmanager:DescribeSecret",
      "secretsmanager:GetSecretValue",
      "secretsmanager:PutSecretValue",
      "secretsmanager:UpdateSecretVersionStage",
    ]
    resources = [aws_secretsmanager_secret.keys.arn]
  }

  dynamic "statement" {
    for_each = local.limits_dynamodb ? [1] : []

    content {
      sid       = "LimitsUsage"
      actions   = ["dynamodb:Query"]
      resources = aws_dynamodb_table.limits[*].arn
    }
  }

  statement {
    sid       = "Key"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}
