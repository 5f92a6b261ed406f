# The ordered upstream list (var.upstreams) as STREAMGATE_UPSTREAMS, which lib/config.py reads
# and which takes precedence over STREAMGATE_UPSTREAM. Each Gemini API upstream's key is a
# Secrets Manager secret of its own, named in its entry by ARN (apiKeySecret) and read once per
# instance; the key is never in the list. Vertex upstreams use the google_credentials secret.
locals {
  listed_upstreams = [
    for i, u in var.upstreams : merge(u, { name = coalesce(u.name, "${u.kind}-${i + 1}") })
  ]
  listed_gemini = toset([for u in local.listed_upstreams : u.name if u.kind == "gemini"])
  lists_vertex  = anytrue([for u in var.upstreams : u.kind == "vertex"])
}

# The list as JSON: the secrets' ARNs are known once they exist.
locals {
  upstream_list = [
    for u in local.listed_upstreams : merge(
      { kind = u.kind, name = u.name },
      u.kind == "vertex" ? { project = u.project, location = u.location } : {},
      u.kind == "gemini" ? { apiKeySecret = aws_secretsmanager_secret.upstream_key[u.name].arn } : {},
      u.base_url == null ? {} : { baseUrl = u.base_url },
    )
  ]
  upstreams_environment = length(var.upstreams) > 0 ? merge(
    { STREAMGATE_UPSTREAMS = jsonencode(local.upstream_list) },
    local.lists_vertex ? { STREAMGATE_GOOGLE_CREDENTIALS_SECRET = one(aws_secretsmanager_secret.google_credentials[*].arn) } : {},
  ) : {}
}

resource "aws_secretsmanager_secret" "upstream_key" {
  #checkov:skip=CKV2_AWS_57:A Gemini API key is issued by Google AI Studio; Secrets Manager cannot rotate it. Replace the value by hand.
  for_each = local.listed_gemini

  name                    = "${local.prefix}upstream-${each.key}-key"
  description             = "Gemini API key of the listed upstream ${each.key}"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7
}
