"""The only package that imports boto3: sessions, collectors and the Snapshot they fill."""
