"""Operations as code: SLOs, burn-rate and symptom alerts, the dashboard and the uptime check.

`component.Monitoring` builds them; `catalog` says what is measured and why; `alerting` holds
the burn-rate windows and the spec types; `dashboard` the typed dashboard; `config` the
per-environment goals, thresholds and channels. This module imports nothing so that
`airline_platform.config` can import `monitoring.config` without a cycle.
"""
