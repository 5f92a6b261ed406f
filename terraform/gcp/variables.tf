variable "build_service_account" {
  description = "Email of the service account Cloud Build uses to build the functions; null keeps the project's default build account."
  type        = string
  default     = null
}

variable "enable_apis" {
  description = "Enable the Google APIs this stack needs (never disabled on destroy)."
  type        = bool
  default     = true
}

variable "extra_environment" {
  description = "More environment variables for every function (e.g. STREAMGATE_LOG_LEVEL); the ones this stack sets win."
  type        = map(string)
  default     = {}
}

variable "function" {
  description = "Cloud Run functions (gen2) settings shared by every route family."
  type = object({
    available_cpu                    = optional(string, "1")
    available_memory                 = optional(string, "512Mi")
    max_instance_count               = optional(number, 20)
    max_instance_request_concurrency = optional(number, 250)
    min_instance_count               = optional(number, 0)
    timeout_seconds                  = optional(number, 3600)
  })
  default = {}

  validation {
    condition     = tonumber(var.function.available_cpu) >= 1
    error_message = "available_cpu must be at least 1: more than one request per instance needs a whole vCPU."
  }
  validation {
    condition     = var.function.max_instance_request_concurrency >= 1 && var.function.max_instance_request_concurrency <= 1000
    error_message = "max_instance_request_concurrency must be between 1 and 1000."
  }
  validation {
    condition     = var.function.timeout_seconds >= 1 && var.function.timeout_seconds <= 3600
    error_message = "timeout_seconds must be between 1 and 3600 (the HTTP function maximum)."
  }
}

variable "gateway" {
  description = "API Gateway: region (null = var.region; it must be an API Gateway region), streaming (create the gateway with streaming on, see streaming.tf) and the Python that runs scripts/streaming_gateway.py."
  type = object({
    python    = optional(string, "python3")
    region    = optional(string)
    streaming = optional(bool, true)
  })
  default = {}
}

variable "key_admins" {
  description = "Members (e.g. \"user:ops@example.com\") who may edit the key document with the key CLI (a custom role on that secret only)."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "Labels for every resource that takes them."
  type        = map(string)
  default     = {}
}

variable "limits" {
  description = "The per-key limits store (docs/limits.md). store = \"memory\" (default): each instance counts alone and nothing is created. store = \"redis\": a Memorystore for Redis instance (tier, memory_size_gb; AUTH and TLS) in var.region, which the functions reach by Direct VPC egress for private ranges only, on network and subnetwork (both required then; the subnetwork in var.region). lease_ttl_s: a stream lease expires this long after its last renewal; timeout_s: the store's connect and read timeout."
  type = object({
    lease_ttl_s    = optional(number, 30)
    memory_size_gb = optional(number, 1)
    network        = optional(string)
    store          = optional(string, "memory")
    subnetwork     = optional(string)
    tier           = optional(string, "BASIC")
    timeout_s      = optional(number, 0.5)
  })
  default = {}

  validation {
    condition     = contains(["memory", "redis"], var.limits.store)
    error_message = "limits.store must be memory or redis (Memorystore for Redis; see terraform/gcp/limits.tf for why not Valkey)."
  }
  validation {
    condition     = var.limits.store != "redis" || (var.limits.network != null && var.limits.subnetwork != null)
    error_message = "limits.store = \"redis\" needs limits.network and limits.subnetwork: the VPC the functions reach Memorystore through."
  }
  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.limits.tier)
    error_message = "limits.tier must be BASIC or STANDARD_HA."
  }
  validation {
    condition     = var.limits.lease_ttl_s > 0 && var.limits.timeout_s > 0 && var.limits.memory_size_gb >= 1
    error_message = "limits.lease_ttl_s and limits.timeout_s must be positive, limits.memory_size_gb at least 1."
  }
}

variable "prefix" {
  description = "Prefix of every resource name (lowercase letters, digits, hyphens; ends with a hyphen)."
  type        = string
  default     = "streamgate-"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,18}-$", var.prefix))
    error_message = "prefix must be 2-20 lowercase letters, digits or hyphens, start with a letter and end with a hyphen."
  }
}

variable "project_id" {
  description = "Google Cloud project that hosts the functions, secrets and gateway."
  type        = string
}

variable "region" {
  description = "Region of the functions and the source bucket."
  type        = string
  default     = "us-central1"
}

variable "runtime" {
  description = "Gateway runtime settings: allowed CORS origins, upstream idle timeout, and how long a key document is cached."
  type = object({
    cors_origins   = optional(list(string), [])
    idle_timeout_s = optional(number, 300)
    keys_ttl_s     = optional(number, 60)
  })
  default = {}
}

variable "source_dir" {
  description = "Directory zipped as the functions' source (main.py and requirements.txt at its root); null = the repository root."
  type        = string
  default     = null
}

variable "upstream" {
  description = "Where requests go: echo (no upstream, for smoke tests), vertex (Vertex AI as the function's service account) or gemini (Gemini API key from Secret Manager)."
  type        = string
  default     = "echo"

  validation {
    condition     = contains(["echo", "vertex", "gemini"], var.upstream)
    error_message = "upstream must be echo, vertex or gemini."
  }
}

variable "upstreams" {
  description = "Ordered upstream list (STREAMGATE_UPSTREAMS): a call goes to the first healthy one and moves to the next on a refused connection, a 429 or a 5xx before its first byte. Empty = the single upstream above. vertex: project (null = project_id) and location; gemini: its key goes in the secret the upstream_key_secrets output names. base_url replaces Google's host (tests, a proxy)."
  type = list(object({
    kind     = string
    name     = optional(string)
    project  = optional(string)
    location = optional(string, "global")
    base_url = optional(string)
  }))
  default = []

  validation {
    condition     = alltrue([for u in var.upstreams : contains(["vertex", "gemini"], u.kind)])
    error_message = "Each upstream's kind must be vertex or gemini."
  }
  validation {
    condition     = alltrue([for u in var.upstreams : u.name == null || can(regex("^[a-z][a-z0-9-]{0,29}$", u.name))])
    error_message = "An upstream's name is 1-30 lowercase letters, digits and hyphens, starting with a letter."
  }
  validation {
    condition     = length(distinct([for i, u in var.upstreams : coalesce(u.name, "${u.kind}-${i + 1}")])) == length(var.upstreams)
    error_message = "Every upstream needs its own name."
  }
  validation {
    condition     = alltrue([for u in var.upstreams : u.kind == "vertex" || (u.project == null && u.location == "global")])
    error_message = "A gemini upstream has no project or location."
  }
}

variable "vertex" {
  description = "Vertex AI upstream: project (null = project_id) and location (global, us, eu or a region)."
  type = object({
    location = optional(string, "global")
    project  = optional(string)
  })
  default = {}
}
