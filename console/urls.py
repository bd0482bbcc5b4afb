"""Pages of the ambassador: joining, the dashboard, and the hosted form's "Share it too"."""

from django.urls import path

from console import views

urlpatterns = [
    path("p/<slug:slug>/join", views.program_join, name="program-join"),
    path("p/<slug:slug>/share", views.program_share, name="program-share"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/login/<str:token>", views.dashboard_login, name="dashboard-login"),
    path("dashboard/<slug:slug>/links", views.dashboard_link_create, name="dashboard-link-create"),
    path("dashboard/<slug:slug>/name", views.dashboard_display_name, name="dashboard-display-name"),
    path("dashboard/<slug:slug>/qr.svg", views.dashboard_qr, name="dashboard-qr"),
]
