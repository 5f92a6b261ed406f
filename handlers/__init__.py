"""Platform adapters: a functions-framework or Lambda request to `lib/` and its result back."""
