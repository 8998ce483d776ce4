"""Package data: the NIQE pristine-image model."""
