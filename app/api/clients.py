"""The official Google clients, pointed at the cloud or at the local emulators.

Only the address changes between targets: Pub/Sub follows PUBSUB_EMULATOR_HOST (read by the
client itself); BigQuery takes an explicit API endpoint and anonymous credentials locally.
"""

from __future__ import annotations

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from google.cloud.pubsub_v1 import PublisherClient

from app.api.settings import Settings


def bigquery_client(settings: Settings) -> bigquery.Client:
    if settings.bigquery_api_endpoint:
        return bigquery.Client(
            project=settings.project_id,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=settings.bigquery_api_endpoint),
        )
    return bigquery.Client(project=settings.project_id)


def publisher_client() -> PublisherClient:
    return PublisherClient()
