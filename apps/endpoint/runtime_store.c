/*
 * runtime_store.c: the runtime's object-store interface (ep_rt_store in
 * runtime.h) over the server's S3 store (s3_store.h).
 *
 * The runtime reaches the store through three function pointers so that it
 * can be unit-tested with an in-memory store and does not depend on how the
 * server lays objects out on disk.  This file is the one place that binds
 * the two together.  Reads are capped at SageMaker's 1 GB async payload
 * limit; a write to a bucket that vanished (someone deleted it while the
 * server ran) recreates the bucket rather than losing the result.
 */
#include "runtime.h"

#include "s3_store.h"

#define RT_MAX_INPUT_BYTES ((size_t)1 << 30)

static int store_get(void *ctx, const char *bucket, const char *key, unsigned char **data, size_t *len) {
  ep_store_status st = ep_store_get(ctx, bucket, key, RT_MAX_INPUT_BYTES, data, len, NULL);
  if (st == ASD_STORE_OK) return 0;
  if (st == ASD_STORE_NO_BUCKET || st == ASD_STORE_NO_KEY || st == ASD_STORE_BAD_BUCKET ||
      st == ASD_STORE_BAD_KEY)
    return 1;
  return -1;
}

static int store_exists(void *ctx, const char *bucket, const char *key) {
  return ep_store_head(ctx, bucket, key, NULL) == ASD_STORE_OK;
}

static int store_put(void *ctx, const char *bucket, const char *key, const void *data, size_t len,
                     const char *content_type) {
  ep_store_status st = ep_store_put(ctx, bucket, key, data, len, content_type, NULL);
  if (st == ASD_STORE_NO_BUCKET) {
    ep_store_create_bucket(ctx, bucket);
    st = ep_store_put(ctx, bucket, key, data, len, content_type, NULL);
  }
  return st == ASD_STORE_OK ? 0 : -1;
}

void ep_rt_store_from_store(struct ep_store *store, ep_rt_store *out) {
  out->ctx = store;
  out->get = store_get;
  out->exists = store_exists;
  out->put = store_put;
}
