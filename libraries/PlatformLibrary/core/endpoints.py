"""Where the platform is: read lazily, because variable files are read before the platform exists.

On the embedded target the truth is ``<PLATFORM_STATE_DIR>/endpoints.json`` written by
``python -m testbed up``; it is re-read whenever the file changes (a restarted platform gets new ports).
On AWS the same keys come from the profile variables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .profile import Profile

# Where the aws profile reads a value from, when it is not the environment variable of the same name.
ENV_SOURCES = {
    "PLATFORM_API_URL": "ALB_URL (the API's URL behind the load balancer; or PLATFORM_API_URL)",
    "FAULT_PROXY_URL": "TOXIPROXY_URL",
}


class EndpointsError(RuntimeError):
    ROBOT_SUPPRESS_NAME = True


class Endpoints:
    FILE_NAME = "endpoints.json"

    def __init__(self, profile: Profile):
        self._profile = profile
        self._cache: dict[str, Any] | None = None
        self._cache_key: tuple[str, int, int] | None = None

    @property
    def state_dir(self) -> Path:
        return Path(self._profile.text("PLATFORM_STATE_DIR")).expanduser().resolve()

    @property
    def file(self) -> Path:
        return self.state_dir / self.FILE_NAME

    @property
    def local_platform_dir(self) -> Path | None:
        """Where the platform under test keeps its state on this machine (the embedded platform's state folder), or
        ``None`` for a deployment elsewhere. Keywords that act on things of this machine (a workspace folder, the
        platform's processes, a private platform of the test's own) ask this instead of the target's name."""
        return self.state_dir if self._profile.is_embedded else None

    def local_aws(self) -> dict[str, str] | None:
        """The AWS stand-ins of a platform on this machine: ``region`` and the service URLs (moto) from the endpoints
        file; ``None`` for a deployment, reached through boto3's normal chain and the profile's AWS settings."""
        if not self._profile.is_embedded:
            return None
        services = (("region", "AWS_REGION"), ("cloudwatch", "CLOUDWATCH_ENDPOINT_URL"))
        services += (("dynamodb", "DYNAMODB_ENDPOINT_URL"),)
        found = {name: str(self.get(key, None) or "") for name, key in services}
        found["region"] = found["region"] or "us-east-1"
        return {name: value for name, value in found.items() if value}

    def exists(self) -> bool:
        return not self._profile.is_embedded or self.file.is_file()

    def load(self) -> dict[str, Any]:
        """All endpoint values; on the embedded target straight from the endpoints file."""
        if not self._profile.is_embedded:
            return {}
        path = self.file
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise EndpointsError(
                f"The embedded platform has not written {path} yet. Start it with "
                f"'Ensure Platform Is Running' or 'python -m testbed up --state {self.state_dir}'."
            ) from None
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if self._cache is None or key != self._cache_key:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise EndpointsError(f"Cannot read endpoints file {path}: {error}") from None
            if not isinstance(data, dict):
                raise EndpointsError(f"Endpoints file {path} must hold a JSON object, got {type(data).__name__}.")
            self._cache, self._cache_key = data, key
        return dict(self._cache)

    def get(self, key: str, default: Any = ...) -> Any:
        """One endpoint value, e.g. ``PLATFORM_API_URL`` or ``SESSIONS_TABLE``."""
        if self._profile.is_embedded:
            data = self.load()
            if key in data:
                return data[key]
            if default is not ...:
                return default
            raise EndpointsError(f"Endpoints file {self.file} has no key '{key}'. Keys: {', '.join(sorted(data))}.")
        if default is ...:
            value = self._profile.get(key)
            if value in (None, ""):
                source = ENV_SOURCES.get(key, key)
                raise EndpointsError(
                    f"Profile '{self._profile.text('PROFILE')}' has no value for ${{{key}}}: set the environment "
                    f"variable {source} before the run (docs/aws.md lists them), or pass --variable {key}:<value>."
                )
            return value
        return self._profile.get(key, default)

    def forget(self) -> None:
        self._cache = None
        self._cache_key = None
