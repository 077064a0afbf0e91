"""AWS clients for the sns and lambda channels, from ecsguard's AWS session (the aws/ package)."""

from __future__ import annotations

from typing import Any

from ecsguard.notify.channels import ChannelError


def aws_client(service: str, region: str | None, endpoint_url: str | None, timeout: float) -> Any:
    """A client without SDK retries (the dispatcher retries with backoff), bounded timeouts.

    The endpoint is `endpoint_url`, else $AWS_ENDPOINT_URL (botocore reads it), else AWS's.
    """
    from ecsguard.aws.session import AwsOptions, AwsSession
    from ecsguard.core.errors import UserError

    try:
        session = AwsSession(
            AwsOptions(
                regions=(region,) if region else (),
                endpoint_url=endpoint_url,
                max_attempts=1,  # no SDK retries: the dispatcher retries with backoff
                connect_timeout=min(timeout, 5.0),
                read_timeout=timeout,
            )
        )
        return session.client(service)
    except UserError as err:  # no region, unknown profile
        raise ChannelError(f"cannot create an AWS {service} client: {err}") from None
