"""IAM governance: policy model and evaluation, tiers, escalation paths, stray identities."""
