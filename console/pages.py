"""What every page does with a policy's refusal: anonymous -> log in, not theirs -> 404, wrong role -> 403.

Pages ask `core.policies` as the API does (ambassadors.auth.require); only the answer differs, because a
person in a browser who is not signed in should land on the log-in page, not read a 401.
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

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
