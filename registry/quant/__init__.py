"""int8 quantisation and the int8-versus-fp32 gate."""

__all__ = ["gate", "inputs", "quantize", "run"]
