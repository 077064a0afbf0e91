"""Monitoring: metric sources that fill the `metrics` table and reads over it. CloudWatch polling
lives in `cloudwatch` (its queries, built from a Snapshot, in `queries`); `series` reads one metric
per period back from the store."""
