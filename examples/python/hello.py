"""The example kubeless Python function: `funcd run examples/python/hello.py --handler hello`."""


def hello(event, context):
    """GET / answers a greeting."""
    return "Hello world!"


def echo(event, context):
    """POST a JSON body and get it back: `data` is already parsed for application/json."""
    return event["data"]
