"""What the long commands of this app share: the programs a run covers."""

from django.core.management.base import CommandError

from ambassadors.models import Program


def programs_to_run(slug: str | None) -> list[Program]:
    """Every program in id order, or the one with this slug (a CommandError when there is none)."""
    programs = list(Program.objects.order_by("pk"))
    if slug is None:
        return programs
    chosen = [p for p in programs if p.slug == slug]
    if not chosen:
        raise CommandError(f"No program with the slug {slug!r}.")
    return chosen
