"""The one event referrals announces: counts changed for a program and some of its ambassadors.

Rewards listens (it depends on referrals, never the other way) and enqueues its recalculation on commit.
"""

from django.dispatch import Signal

# Sent inside the transaction that changed the counts, with program_id and ambassador_ids.
counts_changed = Signal()
