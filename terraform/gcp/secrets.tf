# Terraform creates the secrets and who may read them; it never holds their values (no secret
# versions here), so no key reaches the state. Add values with the key CLI / gcloud (docs/deploy.md).
resource "google_secret_manager_secret" "keys" {
  secret_id = "${local.prefix}keys"
  project   = var.project_id
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.required]
}

resource "google_secret_manager_secret" "gemini_api_key" {
  count = var.upstream == "gemini" ? 1 : 0

  secret_id = "${local.prefix}gemini-api-key"
  project   = var.project_id
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.required]
}

resource "google_secret_manager_secret_iam_member" "function" {
  for_each = local.function_secrets

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function.email}"
}

# The key CLI (python -m lib.keys) reads the document, takes a short lease in an annotation of
# the secret (secrets.update with an etag) and adds a version: exactly these permissions.
resource "google_project_iam_custom_role" "key_admin" {
  count = length(var.key_admins) > 0 ? 1 : 0

  project     = var.project_id
  role_id     = replace("${local.prefix}key_admin", "-", "_")
  title       = "streamgate key admin"
  description = "Edit the streamgate key document with python -m lib.keys"
  permissions = [
    "secretmanager.secrets.get",
    "secretmanager.secrets.update",
    "secretmanager.versions.access",
    "secretmanager.versions.add",
    "secretmanager.versions.get",
    "secretmanager.versions.list",
  ]
}

resource "google_secret_manager_secret_iam_member" "key_admin" {
  for_each = toset(var.key_admins)

  project   = var.project_id
  secret_id = google_secret_manager_secret.keys.secret_id
  role      = google_project_iam_custom_role.key_admin[0].name
  member    = each.key
}
