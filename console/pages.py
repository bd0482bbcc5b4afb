"""What every page does with a policy's refusal: anonymous -> log in, not theirs -> 404, wrong role -> 403.

Pages ask `core.policies` as the API does (ambassadors.auth.require); only the answer differs, because a
person in a browser who is not signed in should land on the log-in page, not read a 401.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from ambassadors.models import Program
from core import policies


def refused(request: HttpRequest, decision: policies.Decision) -> HttpResponse | None:
    """None when `decision` allows; a redirect to log in when it asks for a signed-in person; raises
    Http404 or PermissionDenied otherwise. Use as `if (answer := refused(request, decision)): return answer`."""
    if decision:
        return None
    if decision.outcome is policies.Outcome.UNAUTHENTICATED:
        return redirect_to_login(request.get_full_path())
    if decision.outcome is policies.Outcome.HIDDEN:
        raise Http404(decision.reason)
    raise PermissionDenied(decision.reason)


def staff_program(
    request: HttpRequest, slug: str, may: Callable[[policies.Principal, Program], policies.Decision]
) -> Program | HttpResponse:
    """A staff console page's program, or the answer to who may not: log in first, 403 for a signed-in person
    outside the console, 404 for an unknown slug, then `may(principal, program)` (the page's own policy)."""
    principal = policies.Principal.from_request(request)
    if answer := refused(request, policies.may_use_staff_console(principal)):
        return answer
    program = Program.objects.filter(slug=slug).first()
    if program is None:
        raise Http404("No program with this slug.")
    if answer := refused(request, may(principal, program)):
        return answer
    return program
