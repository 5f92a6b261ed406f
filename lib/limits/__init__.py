"""Per-key limits: rate limits, concurrency leases and budgets counted in a store shared by all instances.

Importing the package costs nothing: `lib.limits.chooser.open_limiter` builds a limiter, and the store
clients (redis, boto3) and the price table (genai-prices) are imported only when they are used.
"""
