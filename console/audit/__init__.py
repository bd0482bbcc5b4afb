"""/audit/: the admins' console (attribution search and explanation, overrides, fraud review, audit trail)."""
