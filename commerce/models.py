"""Parrain's links with the business's commerce: Stripe, embedded dashboards, waitlists, cash payouts."""
