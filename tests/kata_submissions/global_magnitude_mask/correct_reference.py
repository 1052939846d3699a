from lthkit.kata import global_magnitude_mask  # noqa: F401
