"""The audit console's pages, spliced into config/urls.py (the permission table enumerates top-level pages)."""

from console.audit import people, review, search

urlpatterns = [*search.urlpatterns, *review.urlpatterns, *people.urlpatterns]
