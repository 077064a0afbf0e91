"""Secrets Manager: secret metadata (rotation, KMS key, last access). Never values: ListSecrets
returns none and ecsguard has no GetSecretValue right."""

from __future__ import annotations

from ecsguard.aws.collect import CollectContext, collector
from ecsguard.aws.snapshot import SecretsManagerSection


@collector("secretsmanager", actions=["secretsmanager:ListSecrets"])
def collect_secrets(ctx: CollectContext) -> SecretsManagerSection:
    return SecretsManagerSection(secrets=ctx.pages("secretsmanager", "ListSecrets", "SecretList"))
