"""Official Google clients pointed at the local emulators, without touching process-wide env."""

from __future__ import annotations

import grpc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, pubsub_v1
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport


def publisher_client(pubsub_host: str, **kwargs: object) -> pubsub_v1.PublisherClient:
    """A publisher on the emulator's plain-text gRPC port (what PUBSUB_EMULATOR_HOST would do)."""
    transport = PublisherGrpcTransport(channel=grpc.insecure_channel(pubsub_host))
    return pubsub_v1.PublisherClient(transport=transport, **kwargs)


def subscriber_client(pubsub_host: str) -> pubsub_v1.SubscriberClient:
    transport = SubscriberGrpcTransport(channel=grpc.insecure_channel(pubsub_host))
    return pubsub_v1.SubscriberClient(transport=transport)


def bigquery_client(project: str, api_endpoint: str) -> bigquery.Client:
    """A BigQuery client on bqemulator's REST endpoint with anonymous credentials."""
    return bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=api_endpoint),
    )
