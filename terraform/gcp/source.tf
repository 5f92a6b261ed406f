# The repository, zipped; the object name carries the zip's MD5, so a code change redeploys.
data "archive_file" "source" {
  type             = "zip"
  source_dir       = local.source_dir
  excludes         = local.source_excludes
  output_path      = "${local.source_dir}/build/streamgate-gcp-source.zip"
  output_file_mode = "0644"
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Holds only build inputs that Cloud Build reads; data access is in Cloud Audit Logs, a usage-log bucket would add a second bucket for no reader.
  name                        = "${var.project_id}-${local.prefix}source"
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.required]
}

resource "google_storage_bucket_object" "source" {
  name   = "source-${data.archive_file.source.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}
