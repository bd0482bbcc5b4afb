"""The form renderer of every Django form on Parrain's pages: one field template, templates/forms/field.html."""

from django.forms.renderers import TemplatesSetting


class ParrainFormRenderer(TemplatesSetting):
    """Django's div layout, each field through templates/forms/field.html (TEMPLATES, so our overrides apply)."""

    form_template_name = "django/forms/div.html"
    field_template_name = "forms/field.html"
