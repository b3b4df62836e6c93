"""Events: what a state change publishes, and the in-process hub that delivers it."""
