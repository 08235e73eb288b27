// librdkafka, linked statically through pkg-config's rdkafka-static (see Package.swift).
#include <librdkafka/rdkafka.h>
