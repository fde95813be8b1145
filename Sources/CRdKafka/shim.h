#ifndef EZPOLL_CRDKAFKA_SHIM_H
#define EZPOLL_CRDKAFKA_SHIM_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/// rd_kafka_producev is variadic and cannot be called from Swift; this fixed-arity
/// wrapper can. Key and value are copied (RD_KAFKA_MSG_F_COPY); a NULL key or value
/// produces a null key or value. On success librdkafka owns `headers`; on failure the
/// caller still owns them and must destroy them.
static inline rd_kafka_resp_err_t ezpoll_produce(rd_kafka_t *rk,
                                                 const char *topic,
                                                 int32_t partition,
                                                 const void *key, size_t key_len,
                                                 const void *value, size_t value_len,
                                                 rd_kafka_headers_t *headers,
                                                 void *msg_opaque) {
        if (headers) {
                return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                         RD_KAFKA_V_PARTITION(partition),
                                         RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                         RD_KAFKA_V_KEY(key, key_len),
                                         RD_KAFKA_V_VALUE((void *)value, value_len),
                                         RD_KAFKA_V_HEADERS(headers),
                                         RD_KAFKA_V_OPAQUE(msg_opaque),
                                         RD_KAFKA_V_END);
        }
        return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                 RD_KAFKA_V_PARTITION(partition),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_KEY(key, key_len),
                                 RD_KAFKA_V_VALUE((void *)value, value_len),
                                 RD_KAFKA_V_OPAQUE(msg_opaque),
                                 RD_KAFKA_V_END);
}

/// rd_kafka_mock_broker_push_request_error_rtts is variadic; this pushes one
/// (error, delay) pair for the next request of `api_key` that `broker_id` serves.
static inline rd_kafka_resp_err_t ezpoll_mock_push_error_rtt(rd_kafka_mock_cluster_t *mcluster,
                                                             int32_t broker_id,
                                                             int16_t api_key,
                                                             rd_kafka_resp_err_t err,
                                                             int rtt_ms) {
        return rd_kafka_mock_broker_push_request_error_rtts(mcluster, broker_id, api_key, 1, err, rtt_ms);
}

#endif
