"""The embedded target: everything that knows the local platform's processes, cgroups, files and settings."""
