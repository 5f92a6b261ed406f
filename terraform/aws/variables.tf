variable "adapter_layer_arn" {
  description = "ARN of the AWS Lambda Web Adapter layer (x86_64); null = arn:aws:lambda:<region>:753240598075:layer:LambdaAdapterLayerX86:27."
  type        = string
  default     = null
}

variable "extra_environment" {
  description = "More environment variables for every function (e.g. STREAMGATE_LOG_LEVEL); the ones this stack sets win."
  type        = map(string)
  default     = {}
}

variable "function_url" {
  description = "A Lambda Function URL per route family (RESPONSE_STREAM when streaming): off by default; authorization_type NONE leaves auth to the API keys the function checks, AWS_IAM requires SigV4 callers."
  type = object({
    authorization_type = optional(string, "NONE")
    enabled            = optional(bool, false)
  })
  default = {}

  validation {
    condition     = contains(["NONE", "AWS_IAM"], var.function_url.authorization_type)
    error_message = "function_url.authorization_type must be NONE or AWS_IAM."
  }
}

variable "lambda" {
  description = "Lambda settings shared by every route family: memory (MB, CPU scales with it), reserved concurrency (null = unreserved) and timeout (s, at most 900). One request per execution environment at a time: Lambda's own concurrency model."
  type = object({
    memory_size          = optional(number, 1024)
    reserved_concurrency = optional(number)
    timeout              = optional(number, 900)
  })
  default = {}

  validation {
    condition     = var.lambda.timeout >= 1 && var.lambda.timeout <= 900
    error_message = "lambda.timeout must be between 1 and 900 seconds."
  }
}

variable "limits" {
  description = "The per-key limits store (docs/limits.md). store = \"dynamodb\" (default): an on-demand DynamoDB table, so limits hold across every execution environment, at no cost while idle. store = \"memory\": nothing is created and each execution environment counts alone (on Lambda, one request per environment at a time, so per-key limits barely hold). lease_ttl_s: a stream lease expires this long after its last renewal; timeout_s: the store's connect and read timeout."
  type = object({
    lease_ttl_s = optional(number, 30)
    store       = optional(string, "dynamodb")
    timeout_s   = optional(number, 0.5)
  })
  default = {}

  validation {
    condition     = contains(["dynamodb", "memory"], var.limits.store)
    error_message = "limits.store must be dynamodb or memory."
  }
  validation {
    condition     = var.limits.lease_ttl_s > 0 && var.limits.timeout_s > 0
    error_message = "limits.lease_ttl_s and limits.timeout_s must be positive."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the functions' and the REST API's logs."
  type        = number
  default     = 30
}

variable "package_path" {
  description = "The deployment zip built by `make package-aws` (run.sh at its root), relative to this directory unless absolute."
  type        = string
  default     = "../../build/streamgate-aws.zip"
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

variable "region" {
  description = "AWS region of the whole stack."
  type        = string
  default     = "us-east-1"
}

variable "rest_api" {
  description = "The REST API front door (streams with response_transfer_mode STREAM): enabled, stage name, and whether to set this region's API Gateway CloudWatch role (an account-wide setting that logging needs)."
  type = object({
    enabled                     = optional(bool, true)
    manage_account_logging_role = optional(bool, true)
    stage_name                  = optional(string, "live")
  })
  default = {}
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

variable "streaming" {
  description = "Stream responses: the Lambda Web Adapter layer runs the app (handler run.sh) in response_stream mode. false = buffered handler handlers.aws_lambda.lambda_handler."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource (provider default_tags)."
  type        = map(string)
  default     = {}
}

variable "upstream" {
  description = "Where requests go: echo (no upstream), vertex (Vertex AI through Workload Identity Federation) or gemini (Gemini API key from Secrets Manager)."
  type        = string
  default     = "echo"

  validation {
    condition     = contains(["echo", "vertex", "gemini"], var.upstream)
    error_message = "upstream must be echo, vertex or gemini."
  }
}

variable "upstreams" {
  description = "Ordered upstream list (STREAMGATE_UPSTREAMS): a call goes to the first healthy one and moves to the next on a refused connection, a 429 or a 5xx before its first byte. Empty = the single upstream above. vertex: project (required) and location, through the google_credentials secret; gemini: its key goes in the secret the upstream_key_secret_arns output names. base_url replaces Google's host (tests, a proxy)."
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
    condition     = alltrue([for u in var.upstreams : u.kind == "gemini" || u.project != null])
    error_message = "A vertex upstream needs its project."
  }
  validation {
    condition     = alltrue([for u in var.upstreams : u.kind == "vertex" || (u.project == null && u.location == "global")])
    error_message = "A gemini upstream has no project or location."
  }
}

variable "vertex" {
  description = "Vertex AI upstream: Google Cloud project (required when upstream is vertex) and location (global, us, eu or a region)."
  type = object({
    location = optional(string, "global")
    project  = optional(string)
  })
  default = {}
}
