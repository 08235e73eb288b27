/*
 * librdkafka's in-process mock cluster as a broker process for bench/soak.sh (SOAK_BROKER=mock).
 * It speaks the Kafka protocol to real clients (librdkafka's own test suite runs on it), keeps
 * each partition's newest 5 MB in memory, and serves consumer groups. The local Tansu broker
 * falls behind a 20k events/s stream within minutes on two cores (bench/RESULTS.md), so the soak
 * runs against this one instead.
 *
 *   mock-broker PARTITIONS TOPIC...   prints the bootstrap address, then serves until SIGTERM.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stopping = 0;

static void on_signal(int sig) {
        (void)sig;
        stopping = 1;
}

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: %s PARTITIONS TOPIC...\n", argv[0]);
                return 2;
        }
        int partitions = atoi(argv[1]);
        char err[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        if (!rk) {
                fprintf(stderr, "mock-broker: %s\n", err);
                return 1;
        }
        rd_kafka_mock_cluster_t *cluster = rd_kafka_mock_cluster_new(rk, 1);
        if (!cluster) {
                fprintf(stderr, "mock-broker: the mock cluster did not start\n");
                return 1;
        }
        for (int i = 2; i < argc; i++) {
                /* The checkpoint topic has one partition, as `vigil create-topics` makes it. */
                int n = strstr(argv[i], "checkpoints") ? 1 : partitions;
                if (rd_kafka_mock_topic_create(cluster, argv[i], n, 1) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                        fprintf(stderr, "mock-broker: topic %s not created\n", argv[i]);
                        return 1;
                }
        }
        printf("%s\n", rd_kafka_mock_cluster_bootstraps(cluster));
        fflush(stdout);
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        while (!stopping)
                pause();
        rd_kafka_mock_cluster_destroy(cluster);
        rd_kafka_destroy(rk);
        return 0;
}
