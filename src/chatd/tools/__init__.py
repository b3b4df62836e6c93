"""Tools the agent can call: built-in tools in a registry, and the chat's client-side tools."""
