"""The RevOps console: the admin API (``/api/v1``) and, on the same app, the dashboard."""
