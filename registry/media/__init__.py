"""Reading images and videos into arrays, and representative samples."""
