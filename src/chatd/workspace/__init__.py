"""Workspaces on the server side: templates, the workspace lifecycle, the connections of
workspace agents, and the launcher of local agents."""
