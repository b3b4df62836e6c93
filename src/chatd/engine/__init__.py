"""The chat engine: prompts, and (next) workers and the agent loop."""
