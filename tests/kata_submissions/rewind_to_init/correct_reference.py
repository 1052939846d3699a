from lthkit.kata import rewind_to_init  # noqa: F401
