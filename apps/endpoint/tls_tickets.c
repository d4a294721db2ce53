/*
 * tls_tickets.c: TLS 1.3 session tickets for the endpoint's HTTPS (see
 * tls_tickets.h for why and where).
 *
 * gnutls_session_ticket_enable_server() must be called on a session before
 * its handshake; libmicrohttpd creates the session (gnutls_init, priorities,
 * credentials) before it notifies MHD_CONNECTION_NOTIFY_STARTED and runs the
 * handshake afterwards, on the connection's first events.  At
 * MHD_CONNECTION_NOTIFY_CLOSED the session still exists (libmicrohttpd
 * deinitialises it after the notification), so whether the handshake
 * resumed is read there.
 */
#include "tls_tickets.h"

#include <stdlib.h>

#include <gnutls/gnutls.h>

struct ep_tls_tickets {
  gnutls_datum_t key;
};

ep_tls_tickets *ep_tls_tickets_new(void) {
  ep_tls_tickets *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  if (gnutls_session_ticket_key_generate(&t->key) != GNUTLS_E_SUCCESS) {
    free(t);
    return NULL;
  }
  return t;
}

void ep_tls_tickets_free(ep_tls_tickets *t) {
  if (!t) return;
  if (t->key.data) {
    gnutls_memset(t->key.data, 0, t->key.size);
    gnutls_free(t->key.data);
  }
  free(t);
}

static gnutls_session_t session_of(struct MHD_Connection *con) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  return ci ? (gnutls_session_t)ci->tls_session : NULL;
}

void ep_tls_tickets_enable(const ep_tls_tickets *t, struct MHD_Connection *con) {
  gnutls_session_t s = t ? session_of(con) : NULL;
  /* A failure leaves the session as it was: full handshakes only. */
  if (s) (void)gnutls_session_ticket_enable_server(s, &t->key);
}

void ep_tls_tickets_count(struct MHD_Connection *con, ep_stats *stats) {
  gnutls_session_t s = session_of(con);
  if (s && gnutls_session_is_resumed(s)) ep_stats_tls_resumed(stats);
}
