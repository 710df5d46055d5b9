"""Operate the dead-letter topic: list what was dead-lettered and why, re-drive it after a fix."""

from app.deadletters.inbox import DeadLetter, DeadLetterInbox, Target

__all__ = ["DeadLetter", "DeadLetterInbox", "Target"]
