// librdkafka (Debian's librdkafka-dev headers). Only FuncdKafka imports it.
#include <librdkafka/rdkafka.h>
