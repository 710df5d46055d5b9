"""The local target: emulators, the bridge worker, the API and a replay of real flights."""

from app.local.processes import StackError
from app.local.stack import LocalStack, LocalStackConfig

__all__ = ["LocalStack", "LocalStackConfig", "StackError"]
