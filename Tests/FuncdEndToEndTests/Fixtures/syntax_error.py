"""A module that does not compile: funcd must refuse to start and say why."""


def handler(event, context):
    return (
