"""Detection: rules as code over the log pipeline's batches (see rules.py)."""
