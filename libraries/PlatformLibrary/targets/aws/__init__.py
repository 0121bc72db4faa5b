"""The AWS target: session containers are ECS tasks, read and stopped with boto3."""
