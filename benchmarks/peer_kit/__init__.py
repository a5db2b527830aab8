"""Pieces of the peer benchmark (``benchmarks/peers.py``): the app, its cases, its charts."""
