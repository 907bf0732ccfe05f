"""A handler that imports a module from its own code folder (``helper.py``)."""

import helper


def handler(event, context):
    return helper.greet('configmap')
