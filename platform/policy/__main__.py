"""Pack entry point. `PolicyPack(...)` serves the policies to the engine and never returns."""

from airline_policies import POLICIES, STACK_POLICIES
from pulumi_policy import PolicyPack

PolicyPack(name="airline-platform-baseline", policies=[*POLICIES, *STACK_POLICIES])
