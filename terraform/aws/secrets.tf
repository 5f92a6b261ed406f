# Terraform creates the secrets (encrypted with the stack's key) and who may read them; it
# never holds their values (no secret versions here). Add values with the key CLI / aws CLI.
resource "aws_secretsmanager_secret" "keys" {
  #checkov:skip=CKV2_AWS_57:The key document is edited by the key CLI (python -m lib.keys), not rotated by a Lambda; API keys are rotated by adding a new key and disabling the old one.
  name                    = "${local.prefix}keys"
  description             = "streamgate key document (SHA-256 hashes of client API keys)"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret" "gemini_api_key" {
  #checkov:skip=CKV2_AWS_57:A Gemini API key is issued by Google AI Studio; Secrets Manager cannot rotate it. Replace the value by hand.
  count = var.upstream == "gemini" ? 1 : 0

  name                    = "${local.prefix}gemini-api-key"
  description             = "Gemini API key used by the gemini upstream"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret" "google_credentials" {
  #checkov:skip=CKV2_AWS_57:Holds a Workload Identity Federation credential configuration (no private key); nothing to rotate.
  count = var.upstream == "vertex" || local.lists_vertex ? 1 : 0

  name                    = "${local.prefix}google-credentials"
  description             = "Google Workload Identity Federation credential configuration for the Vertex AI upstreams"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7
}
