"""Inference backends (transformers, vLLM, HTTP) used by the model kinds in actors/."""
