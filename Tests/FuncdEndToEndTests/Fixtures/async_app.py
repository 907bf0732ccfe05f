"""An ``async def`` handler for the funcd end-to-end tests.

funcd must await coroutine handlers the same way it calls plain ones. /sleep awaits forever so a
test can check that FUNC_TIMEOUT also applies to coroutines; every other path awaits briefly and
answers with a small JSON description.
"""

import asyncio


async def handler(event, context):
    req = event['extensions']['request']
    if req.path == '/sleep':
        await asyncio.sleep(1000)
    await asyncio.sleep(0.05)
    data = event['data']
    return {
        'async': True,
        'path': req.path,
        'data_type': type(data).__name__,
        'data': data if isinstance(data, (dict, list)) else None,
        'function-name': context['function-name'],
    }
