output "function_names" {
  description = "Each route family's Lambda function name."
  value       = { for family, _ in local.routes : family => aws_lambda_function.family[family].function_name }
}

output "function_role_arn" {
  description = "ARN of the functions' IAM role."
  value       = aws_iam_role.function.arn
}

output "function_urls" {
  description = "Each route family's Function URL (empty unless function_url.enabled)."
  value       = { for family, url in aws_lambda_function_url.family : family => url.function_url }
}

output "gemini_api_key_secret_arn" {
  description = "Secrets Manager secret to hold the Gemini API key; null unless upstream is gemini."
  value       = one(aws_secretsmanager_secret.gemini_api_key[*].arn)
}

output "google_credentials_secret_arn" {
  description = "Secrets Manager secret to hold the Workload Identity Federation credential configuration; null unless a Vertex AI upstream is configured."
  value       = one(aws_secretsmanager_secret.google_credentials[*].arn)
}

output "key_admin_policy_json" {
  description = "IAM policy (JSON) that lets a person or pipeline run the key CLI against keys_secret_arn."
  value       = data.aws_iam_policy_document.key_admin.json
}

output "keys_secret_arn" {
  description = "Secrets Manager secret holding the key document: STREAMGATE_KEYS for the key CLI."
  value       = aws_secretsmanager_secret.keys.arn
}

output "kms_key_arn" {
  description = "ARN of the customer managed KMS key of the secrets, environment and logs."
  value       = aws_kms_key.this.arn
}

output "limits_table_name" {
  description = "DynamoDB table of the per-key limits store (STREAMGATE_LIMITS=dynamodb://<name>, e.g. for the key CLI's usage); null with limits.store = \"memory\"."
  value       = one(aws_dynamodb_table.limits[*].name)
}

output "rest_api_url" {
  description = "Invoke URL of the REST API stage (streams); append a route, e.g. /v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse. Null when rest_api.enabled is false."
  value       = one(aws_api_gateway_stage.this[*].invoke_url)
}

output "upstream_key_secret_arns" {
  description = "Secrets Manager secret per listed gemini upstream, by name: put each upstream's Gemini API key in it."
  value       = { for name, secret in aws_secretsmanager_secret.upstream_key : name => secret.arn }
}
