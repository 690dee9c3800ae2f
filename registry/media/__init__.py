"""Reading images and videos into arrays, and representative samples."""

__all__ = ["images", "inputsets", "limits", "resize", "video", "y4m"]
