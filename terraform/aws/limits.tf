# The shared per-key limits store (limits.store = "dynamodb", the default): one table with the
# schema lib/limits/dynamodb_table.py gives it (tests/terraform/test_limits.py keeps them equal).
# On demand it costs nothing while idle: requests and stored bytes only. No VPC: the functions
# reach DynamoDB's public endpoint with their role, as they reach Google.
resource "aws_dynamodb_table" "limits" {
  count = local.limits_dynamodb ? 1 : 0

  name         = "${local.prefix}limits"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  # Every item carries its expiry in epoch seconds. DynamoDB deletes expired items lazily; the store
  # prunes expired windows and leases itself, so deletion only keeps the table small.
  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  # Usage rows are the record of what each key spent (kept 400 days).
  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }
}
