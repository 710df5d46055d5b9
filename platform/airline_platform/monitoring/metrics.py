"""Google's metric types the platform reads, and the label values it restricts them to, in one place.

Names, kinds and labels are Google's metrics list (https://cloud.google.com/monitoring/api/metrics_gcp):
Cloud Run under `gcp-run`, Pub/Sub under `gcp-pubsub`, uptime checks under `gcp-monitoring`. What
the documentation leaves open is written down in docs/operations.md ("Google behaviours we rely
on") with the first-deploy check that settles it.
"""

from __future__ import annotations

# Cloud Run (monitored resource `cloud_run_revision`). request_count and request_latencies count
# only requests that reach a container; instance_count is a GAUGE per `state` (active, idle),
# sampled every 60 s.
REQUESTS = "run.googleapis.com/request_count"
LATENCIES = "run.googleapis.com/request_latencies"
INSTANCES = "run.googleapis.com/container/instance_count"
CPU = "run.googleapis.com/container/cpu/utilizations"

# Pub/Sub (monitored resource `pubsub_subscription` or `pubsub_topic`).
ACKS = "pubsub.googleapis.com/subscription/ack_message_count"
DEAD_LETTERS = "pubsub.googleapis.com/subscription/dead_letter_message_count"
# dead_letter_message_count is grouped by the result of forwarding to the dead-letter topic: only a
# forward that succeeded took the message out of the subscription.
DEAD_LETTERED = {"response_code": "success"}
BACKLOG_AGE = "pubsub.googleapis.com/subscription/oldest_unacked_message_age"
UNDELIVERED = "pubsub.googleapis.com/subscription/num_undelivered_messages"
# A BigQuery (export) subscription's state, as the label `subscription_state` (ACTIVE, ...).
EXPORT_STATE = "pubsub.googleapis.com/subscription/export_push_subscription_details"
TOPIC_PUBLISHES = "pubsub.googleapis.com/topic/send_request_count"

# Uptime checks (monitored resource `uptime_url`): a BOOL per checker region, label `check_id`.
UPTIME_PASSED = "monitoring.googleapis.com/uptime_check/check_passed"
