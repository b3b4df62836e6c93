"""The workspace agent: the process that runs a workspace's operations.

It dials the server over one WebSocket (:mod:`chatd.agent.protocol`) and serves exec and
process control, file reads, writes and edits, and the workspace's context files and skills.
The same program serves a local workspace (started by the server, inside bubblewrap where it
is installed) and an external one (``chatd agent`` run anywhere). It imports nothing of chatd
outside this package, so it starts fast and stays small.
"""
