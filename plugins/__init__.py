"""dagprop's built-in op families. Each module is a plugin registered like any third-party one."""
