"""The staff console's pages, spliced into config/urls.py (the permission table enumerates top-level pages)."""

from console.staff import analytics, programs, webhooks

urlpatterns = [*programs.urlpatterns, *analytics.urlpatterns, *webhooks.urlpatterns]
