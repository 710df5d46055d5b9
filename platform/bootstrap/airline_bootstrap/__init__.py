"""The delivery bootstrap: what every environment's pipeline stands on (named uniquely, not `bootstrap`)."""
