"""Project tools: the dev key, the OpenAPI generator, the AWS package, the hardening report."""
