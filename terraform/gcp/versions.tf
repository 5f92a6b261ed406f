terraform {
  required_version = ">= 1.5, < 2.0"

  required_providers {
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4, < 3.0"
    }
    external = {
      source  = "hashicorp/external"
      version = ">= 2.3, < 3.0"
    }
    google = {
      source = "hashicorp/google"
      # 7.21: service_config.direct_vpc_network_interface and direct_vpc_egress on
      # google_cloudfunctions2_function (Direct VPC egress to the Redis limits store).
      version = ">= 7.21, < 8.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.0, < 8.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

# API Gateway resources exist only in google-beta.
provider "google-beta" {
  project = var.project_id
  region  = var.region
}
