"""A module whose import fails at load time: funcd must refuse to start and say why."""

import funcd_e2e_module_that_does_not_exist  # noqa: F401


def handler(event, context):
    return 'unreachable'
