"""Kinesis Data Streams into the log pipeline, shared by several ecsguard processes.

`leases` keeps one DynamoDB item per shard (owner, counter, checkpoint, parents), written only with
conditional updates; `decode` turns GetRecords batches into `logs` batches; `consumer` is the
worker `ecsguard serve --kinesis-stream` runs beside the HTTP server.
"""
