"""One conversation: the pure core (floor, tool calls, protocol logic) and the asyncio driver around it
(see docs/architecture.md)."""
