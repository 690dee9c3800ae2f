"""ONNX graphs: inspection, the op allowlist, and the graph builder families use."""

__all__ = ["allowlist", "build", "inspect"]
