/*
 * stats.h: request counters of the local endpoint (GET /_asd/stats).
 *
 * The HTTP layer records one entry per answered request: its operation name
 * (PutObject, InvokeEndpointAsync, ...), its status and the bytes received
 * and sent.  The stats document adds the store totals, the runtime's queue
 * and invocation figures and the injected fault counts, each produced by its
 * owner.
 */
#ifndef ASD_EP_STATS_H
#define ASD_EP_STATS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;
typedef struct ep_stats ep_stats;

ep_stats *ep_stats_new(void);
void ep_stats_free(ep_stats *s);

/* operation must be a string with static storage duration. */
void ep_stats_record(ep_stats *s, const char *operation, int status, uint64_t bytes_in,
                         uint64_t bytes_out, double seconds);
void ep_stats_dropped(ep_stats *s, const char *operation);
/* One TCP connection accepted (TLS or not). */
void ep_stats_connection(ep_stats *s);
/* One TLS connection closed whose handshake resumed an earlier session. */
void ep_stats_tls_resumed(ep_stats *s);

/* {"uptime_s":..,"requests_total":..,"bytes_in":..,"bytes_out":..,"dropped":..,"connections":..,"tls_resumed":..,
 *  "requests":{OP:{"count":n,"by_status":{"200":n,..},"latency_ms":{p50,p90,p99,max}}}}
 * New object owned by the caller. */
struct json_object *ep_stats_json(ep_stats *s);

#ifdef __cplusplus
}
#endif

#endif /* ASD_EP_STATS_H */
