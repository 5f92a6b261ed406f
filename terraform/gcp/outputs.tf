output "function_urls" {
  description = "Each route family's function URL (run.app), the gateway's backend and JWT audience."
  value       = { for family, _ in local.routes : family => google_cloudfunctions2_function.family[family].service_config[0].uri }
}

output "gateway_service_account" {
  description = "Email of the service account API Gateway calls the functions as."
  value       = google_service_account.gateway.email
}

output "gateway_streaming" {
  description = "Whether the gateway was created with streaming on (false: it buffers whole responses)."
  value       = var.gateway.streaming
}

output "gateway_url" {
  description = "Base URL of the API Gateway gateway; append a route, e.g. /v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse."
  value       = "https://${local.gateway_hostname}"
}

output "gemini_api_key_secret" {
  description = "Secret Manager secret (projects/P/secrets/S) to hold the Gemini API key; null unless upstream is gemini."
  value       = one(google_secret_manager_secret.gemini_api_key[*].id)
}

output "keys_secret" {
  description = "Secret Manager secret (projects/P/secrets/S) holding the key document: STREAMGATE_KEYS for the key CLI."
  value       = google_secret_manager_secret.keys.id
}

output "limits_url_secret" {
  description = "Secret Manager secret (projects/P/secrets/S) holding STREAMGATE_LIMITS, the Redis limits store's rediss:// URL; null with limits.store = \"memory\"."
  value       = one(google_secret_manager_secret.limits_url[*].id)
}

output "openapi_config_id" {
  description = "The API config the gateway serves (its id carries the spec's MD5)."
  value       = google_api_gateway_api_config.this.api_config_id
}

output "service_account" {
  description = "Email of the functions' service account."
  value       = google_service_account.function.email
}

output "upstream_key_secrets" {
  description = "Secret Manager secret (projects/P/secrets/S) per listed gemini upstream, by name: add each key as a version before the functions start."
  value       = { for name, secret in google_secret_manager_secret.upstream_key : name => secret.id }
}
