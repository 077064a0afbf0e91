"""ecsguard: the customer's side of the AWS shared responsibility model for Amazon ECS."""

__version__ = "0.1.0"
