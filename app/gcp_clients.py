"""The official Google clients, pointed at the cloud or at the local emulators.

Only the address changes between targets. The API's Pub/Sub client follows
PUBSUB_EMULATOR_HOST (read by the library itself); the local runner and tests build theirs
on an explicit emulator host so that they need not touch the process-wide environment. With no
host (None) the Pub/Sub clients use Application Default Credentials against the real service.
"""

from __future__ import annotations

import grpc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, pubsub_v1
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

# The options the library's own transports give their channels: without them a plain channel
# refuses answers over 4 MB, and one pull of a few large (up to 10 MB) messages exceeds that.
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_metadata_size", 4 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30000),
]


def _emulator_channel(pubsub_host: str) -> grpc.Channel:
    return grpc.insecure_channel(pubsub_host, options=CHANNEL_OPTIONS)


def publisher_client(pubsub_host: str | None, **kwargs: object) -> pubsub_v1.PublisherClient:
    """A publisher on the emulator's plain-text gRPC port (what PUBSUB_EMULATOR_HOST would do)."""
    if not pubsub_host:
        return pubsub_v1.PublisherClient(**kwargs)
    transport = PublisherGrpcTransport(channel=_emulator_channel(pubsub_host))
    return pubsub_v1.PublisherClient(transport=transport, **kwargs)


def subscriber_client(pubsub_host: str | None) -> pubsub_v1.SubscriberClient:
    if not pubsub_host:
        return pubsub_v1.SubscriberClient()
    transport = SubscriberGrpcTransport(channel=_emulator_channel(pubsub_host))
    return pubsub_v1.SubscriberClient(transport=transport)


def bigquery_client(project: str, api_endpoint: str | None = None) -> bigquery.Client:
    """BigQuery with Application Default Credentials, or an emulator's endpoint anonymously."""
    if not api_endpoint:
        return bigquery.Client(project=project)
    return bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=api_endpoint),
    )
