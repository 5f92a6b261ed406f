# The shared per-key limits store, only with limits.store = "redis" (with "memory" nothing here is
# created and every instance counts alone).
#
# Memorystore for Redis, not Memorystore for Valkey: google_memorystore_instance (Valkey) takes
# authorization_mode AUTH_DISABLED or IAM_AUTH only, and IAM_AUTH makes the AUTH password a
# short-lived IAM access token, which the store's client (redis-py from one static rediss:// URL)
# neither fetches nor refreshes. google_redis_instance has a static AUTH string (auth_enabled) and
# server-authenticated TLS, which is what STREAMGATE_LIMITS carries, and it peers with
# limits.network directly (DIRECT_PEERING), so it needs no Private Service Connect policy.
resource "google_redis_instance" "limits" {
  count = local.limits_redis ? 1 : 0

  name               = "${local.prefix}limits"
  project            = var.project_id
  region             = var.region
  display_name       = "streamgate per-key limits"
  tier               = var.limits.tier
  memory_size_gb     = var.limits.memory_size_gb
  redis_version      = "REDIS_7_2"
  authorized_network = var.limits.network
  connect_mode       = "DIRECT_PEERING"
  labels             = var.labels

  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"

  # A full instance must refuse writes rather than evict a key's windows, leases or budgets (a
  # limit would reset without a word); refused writes make the gateway fall back, with a warning.
  redis_configs = {
    maxmemory-policy = "noeviction"
  }

  depends_on = [google_project_service.required]
}

# STREAMGATE_LIMITS of the functions: the whole rediss:// URL (AUTH string, address, the instance's
# CA certificates), injected by Cloud Run from Secret Manager, never as a plain variable.
resource "google_secret_manager_secret" "limits_url" {
  count = local.limits_redis ? 1 : 0

  secret_id = "${local.prefix}limits-url"
  project   = var.project_id
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.required]
}

# The one secret value this stack writes. Memorystore generates the AUTH string and the provider
# keeps it in the state already (google_redis_instance.auth_string), so the URL adds no secret to
# the state, and the functions start on the first apply. A new server CA (Memorystore adds one
# five years after creation) changes the URL: a new version, which instances started after it read.
resource "google_secret_manager_secret_version" "limits_url" {
  count = local.limits_redis ? 1 : 0

  secret      = google_secret_manager_secret.limits_url[0].id
  secret_data = local.limits_redis_url
}
