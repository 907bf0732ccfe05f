"""A handler whose answer names its version, for the hot-reload tests (published as version.py)."""


def handler(event, context):
    return 'v1'
