"""The staff console's pages, spliced into config/urls.py (the permission table enumerates top-level pages)."""

from console.staff import analytics, programs

urlpatterns = [*programs.urlpatterns, *analytics.urlpatterns]
