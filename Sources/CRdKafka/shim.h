// librdkafka, linked statically through pkg-config's rdkafka-static (see Package.swift), and its
// in-process mock cluster (rdkafka_mock.h), which the unit tests of VigilKafka run against.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
