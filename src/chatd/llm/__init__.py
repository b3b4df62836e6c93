"""Model providers behind one interface: a stream of normalised parts, or a classified error.

Provider SDKs (openai, anthropic) are imported only inside this package.
"""
