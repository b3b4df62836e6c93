"""Wire types (named as in the reference API) and a small async client."""
