"""Produces four messages of different shapes to TOPIC (one partition): a keyed JSON object with
headers, a text value without key, and two values that look like JSON but are not.
python3 produce_mixed.py BROKER TOPIC"""

import sys

from confluent_kafka import Producer

broker, topic = sys.argv[1], sys.argv[2]
producer = Producer({"bootstrap.servers": broker})
failures = []


def report(error, message):
    if error:
        failures.append(error)


producer.produce(topic, key="k-1", value=' {"n": 1, "list": [1, 2.5, "x"]} ', headers=[("trace", "abc"), ("tenant", "t1")],
                 on_delivery=report)
producer.produce(topic, value="plain text é", on_delivery=report)
producer.produce(topic, key="k-3", value='{"bad": }', on_delivery=report)
producer.produce(topic, value='{"x": NaN}', on_delivery=report)
left = producer.flush(60)
if failures or left:
    sys.exit(f"produce: {len(failures)} failed, {left} not delivered")
print("produced 4")
