"""The one event ambassadors announces: an ambassador changed in a way that changes what counts.

Rewards listens (it depends on ambassadors, never the other way) and recalculates once the change commits.
"""

from django.dispatch import Signal

# Sent inside the transaction that changed the ambassador, with program_id and ambassador_ids.
ambassador_changed = Signal()
