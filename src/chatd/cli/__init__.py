"""The chatd command line."""
