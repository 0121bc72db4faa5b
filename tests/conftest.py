"""Shared fixtures of the platform tests: real embedded platforms, each stopped (and checked stopped) afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.platform_helpers import Platform

Factory = Callable[..., Platform]


@pytest.fixture
def platform_factory(tmp_path: Path) -> Iterator[Factory]:
    started: list[Platform] = []

    def make(*defects: str, **settings: object) -> Platform:
        platform = Platform(tmp_path / f"p{len(started)}", tuple(defects), **settings)
        started.append(platform)
        return platform

    yield make
    for platform in started:
        platform.down()
        assert platform.processes() == [], "platform processes left behind"
