"""The example kubeless Python function: `funcd run examples/python/hello.py --handler hello`."""


def hello(event, context):
    """GET / answers a greeting."""
    return "Hello world!"


def echo(event, context):
    """POST a JSON body and get it back: `data` is already parsed for application/json."""
    return event["data"]


def work(event, context):
    """A CPU-bound call (~1 ms of pure Python): what extra worker processes are for."""
    total = 0
    for number in range(20000):
        total += number * number % 7
    return {"total": total}
