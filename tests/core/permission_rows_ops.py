"""Rows of the permission table (tests/core/test_permission_table.py) for the operators' endpoints.

/metrics is for the metrics scraper only (config/metrics.py): a bearer METRICS_TOKEN or a listed network.
Nobody in the scene presents either, superusers and API keys included: 404, as for a page that does not exist.
"""

#                                                           anon own  othr mkt  aud  su   trk  read mng  othk
ROWS: dict[tuple[str, str, str], tuple[int, ...]] = {
    ("page", "metrics", "GET"):                             (404, 404, 404, 404, 404, 404, 404, 404, 404, 404),
}  # fmt: skip

BODIES: dict[tuple[str, str], dict] = {}
