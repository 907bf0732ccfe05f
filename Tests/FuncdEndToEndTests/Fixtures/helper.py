"""A module beside the handler; the handler imports it like any kubeless function may."""


def greet(name):
    return 'hello %s from helper' % name
