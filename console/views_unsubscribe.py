"""The one-click unsubscribe of bulk e-mails (RFC 8058): POST /u/<token> unsubscribes, GET asks first."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from ambassadors.models import Program
from core.actors import Actor
from core.notifications import FRIEND_SUBSCRIBED, email_opt_out, unsubscribe_read


# RFC 8058: the mail client POSTs "List-Unsubscribe=One-Click" to the URL of the header, with no cookie and
# no CSRF token. The signed token is the proof, and all a forged request could do is unsubscribe the
# mailbox it names from one kind of e-mail. Every other view keeps its CSRF check.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, unsubscribe_token: str) -> HttpResponse:
    target = unsubscribe_read(unsubscribe_token)
    program = Program.objects.filter(pk=target.program_id).first() if target else None
    if target is None or program is None:
        raise Http404("This unsubscribe link is not valid.")
    done = False
    if request.method == "POST":
        # Never on GET: link scanners and previews open every link of an e-mail.
        email_opt_out(request=target, actor=Actor.visitor())
        done = True
    context = {"program": program, "friend_news": target.kind == FRIEND_SUBSCRIBED, "done": done}
    return render(request, "core/unsubscribe.html", context)
