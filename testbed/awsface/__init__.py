"""The embedded platform's AWS face: ECS and FIS APIs over its real processes (docs/aws-emulation.md)."""
