"""/staff/: the marketing console (programs, tiers with their preview, contests, analytics)."""
