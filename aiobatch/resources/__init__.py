"""The API resources: one class per endpoint family."""
