/*
 * tls_tickets.h: TLS session resumption for the endpoint's HTTPS
 * (libmicrohttpd over GnuTLS), as AWS's front ends offer it.
 *
 * A client that must open a new connection (a new worker, a connection the
 * server closed) resumes its earlier TLS session with a ticket instead of a
 * full handshake (no certificate chain sent, none verified).  GnuTLS issues
 * TLS 1.3 tickets only when the server gives each session a ticket key,
 * which libmicrohttpd 0.9.75 has no option for; it does hand out a
 * connection's GnuTLS session when the connection starts, before the
 * handshake, which is where the key is set (ep_tls_tickets_enable).  The key
 * lives in memory for the server's life, like AWS rotates its own: tickets
 * never outlive the process.
 */
#ifndef ASD_EP_TLS_TICKETS_H
#define ASD_EP_TLS_TICKETS_H

#include <microhttpd.h>

#include "stats.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ep_tls_tickets ep_tls_tickets;

/* A random ticket key; NULL when GnuTLS cannot make one (no resumption then). */
ep_tls_tickets *ep_tls_tickets_new(void);
/* Wipes the key. */
void ep_tls_tickets_free(ep_tls_tickets *t);
/* At MHD_CONNECTION_NOTIFY_STARTED: lets the connection's session issue and
 * accept tickets.  A no-op for plain HTTP connections. */
void ep_tls_tickets_enable(const ep_tls_tickets *t, struct MHD_Connection *con);
/* At MHD_CONNECTION_NOTIFY_CLOSED: counts the connection in the stats'
 * "tls_resumed" when its handshake resumed a session. */
void ep_tls_tickets_count(struct MHD_Connection *con, ep_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* ASD_EP_TLS_TICKETS_H */
