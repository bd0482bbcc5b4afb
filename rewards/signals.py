"""What rewards announces to the layers above it (commerce listens; rewards never imports them).

`grant_issued` is sent after the transaction that unlocked a grant with a voucher code commits (a new grant,
or a revoked one reinstated with a fresh code), with `grant_id`. `grant_revoked` is sent after the
transaction that revoked a grant commits, with `grant_id` (commerce deactivates its Stripe promotion code).
Receivers enqueue their own work and must not fail the sender: both are sent with `send_robust`.
"""

from django.dispatch import Signal

grant_issued = Signal()
grant_revoked = Signal()
