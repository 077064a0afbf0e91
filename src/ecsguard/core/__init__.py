"""Models, errors and small helpers shared by every package; imports no boto3 or duckdb."""
