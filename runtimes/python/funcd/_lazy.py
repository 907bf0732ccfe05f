"""Standard modules the glue imports on first use, not at start-up (json, urllib.parse, re and
what they pull in are a third of the interpreter's start-up, and most handlers need none of them).

They are fetched through ``std(name)`` and kept here, so that once the glue has a module it keeps
it even if the user's module takes the same name in ``sys.modules`` (a handler file called
``json.py``): ``load`` fetches any such name before the user's module is registered.
"""

import sys

_modules = {}

# Every module the glue fetches lazily; load() consults it for name clashes.
NAMES = (
    "json",
    "urllib.parse",
    "traceback",
    "asyncio",
    "threading",
    "http.cookies",
    "email.parser",
    "email.policy",
    "binascii",
    "site",
)


def std(name):
    """The standard module ``name``, imported on first use."""
    module = _modules.get(name)
    if module is None:
        # __import__ rather than importlib.import_module: importlib imports warnings, and the
        # glue is imported on every cold start.
        __import__(name)
        module = sys.modules[name]
        _modules[name] = module
    return module


def protect(user_module_name):
    """Fetches now every lazily used module that ``user_module_name`` would shadow."""
    top = user_module_name.partition(".")[0]
    for name in NAMES:
        if name.partition(".")[0] == top:
            std(name)
