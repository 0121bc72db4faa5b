"""The embedded platform's route from its clients to the API: the fault proxy's ``api`` hop, in front of its load
balancer. Every client of the platform takes it (``PLATFORM_API_URL`` is its address), so the library's API client is
the probes' client, and the partition is a black hole on that hop (`Cut Off Fault Proxy Hop`): a fault on the whole
platform, which the network keywords' hop guard lets run on a private platform or with the platform held."""

from __future__ import annotations

from ...core.base import LibraryContext
from ...core.http_client import PlatformApiClient
from ..network import ChaosNetworkKeywords
from .base import ClientRoute

HOP = "api"


class LoadBalancerHopRoute(ClientRoute):
    name = "fault proxy's api hop (in front of the load balancer)"

    def __init__(self, ctx: LibraryContext, network: ChaosNetworkKeywords):
        self.ctx = ctx
        self.network = network

    def client(self) -> PlatformApiClient:
        return self.ctx.api

    def cut_off(self) -> str:
        return self.network.cut_off_fault_proxy_hop(HOP)
