/*
 * resources.c: the registry of created resources and the cleanup policy.
 *
 * The Python reference keeps every resource it ever created in a dictionary
 * and deletes inputs as soon as the invocation returns, while the endpoint
 * may not have read them yet.  This registry fixes both: an entry is added
 * ACTIVE and nothing ever deletes an ACTIVE entry except an explicit forced
 * cleanup; the owner disposes of it only once the job is over, and from then
 * on the entry is either deleted and forgotten, or forgotten at once.  The
 * registry therefore holds what is in flight plus what waits for deletion,
 * never the history.
 *
 * Data structures: a hash table from id to entry for O(1) dispose/release,
 * and a FIFO of entries waiting for deletion.  The FIFO is ordered by due
 * time because every entry of one registry waits the same delay (0 for
 * immediate, cleanup_delay_seconds for delayed), so no heap is needed: the
 * collector pops from the head while the head is due.
 *
 * Deletion happens outside the lock: the collector detaches a batch, groups
 * it by bucket and hands each group to the caller's DeleteObjects function
 * (at most 1000 keys per call), so a slow S3 never blocks jobs that register
 * or dispose of entries meanwhile.
 *
 * Scope.  Before a batch goes to S3 every object is checked against the
 * allowed bucket+prefix list (asd_resources_allow); one outside it is not
 * deleted, is counted, and the first such object of a registry is reported
 * as a warning naming it.  The check sits here, at the last moment before
 * the delete, so that no path (dispose, forced cleanup, resume) can bypass
 * it.
 */
#include "asyncdetect/asd_resources.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asyncdetect/asd_common.h"
#include "cpl_error.h"

typedef enum entry_state { ST_ACTIVE, ST_PENDING } entry_state;

typedef struct entry {
  uint64_t id;
  asd_resource_type type;
  entry_state state;
  double due;
  char *where; /* bucket, or NULL */
  char *what;  /* key, path or name */
  struct entry *hnext;            /* hash chain */
  struct entry *qprev, *qnext;    /* pending FIFO */
} entry;

struct asd_resources {
  pthread_mutex_t mu;
  asd_cleanup_policy policy;
  double delay;
  asd_s3_delete_fn s3_delete;
  void *ctx;

  entry **table;
  size_t table_size; /* power of two */
  size_t count;
  long long by_type[ASD_RES__COUNT];
  long long active, pending;
  entry *qhead, *qtail;

  uint64_t next_id;
  long long deleted, delete_failed, retained, added;
  char last_failure[512];

  /* Deletion scope: n_scopes pairs of bucket, prefix; none = no limit. */
  char **scope_bucket, **scope_prefix;
  int n_scopes;
  long long out_of_scope;
  char last_out_of_scope[512];
};

const char *asd_resource_type_name(asd_resource_type t) {
  switch (t) {
    case ASD_RES_S3_OBJECT: return "s3_object";
    case ASD_RES_TEMP_FILE: return "temp_file";
    case ASD_RES_INFERENCE_JOB: return "inference_job";
    case ASD_RES_WORKER_THREAD: return "worker_thread";
    case ASD_RES__COUNT: break;
  }
  return "unknown";
}

asd_resources *asd_resources_new(asd_cleanup_policy policy, double delay_seconds,
                                 asd_s3_delete_fn s3_delete, void *ctx) {
  asd_resources *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->table_size = 256;
  r->table = calloc(r->table_size, sizeof *r->table);
  if (!r->table) {
    free(r);
    return NULL;
  }
  pthread_mutex_init(&r->mu, NULL);
  r->policy = policy;
  r->delay = policy == ASD_CLEANUP_DELAYED ? delay_seconds : 0;
  r->s3_delete = s3_delete;
  r->ctx = ctx;
  r->next_id = 1;
  return r;
}

static void entry_free(entry *e) {
  if (!e) return;
  free(e->where);
  free(e->what);
  free(e);
}

void asd_resources_free(asd_resources *r) {
  if (!r) return;
  for (size_t i = 0; i < r->table_size; i++) {
    entry *e = r->table[i];
    while (e) {
      entry *n = e->hnext;
      entry_free(e);
      e = n;
    }
  }
  free(r->table);
  for (int i = 0; i < r->n_scopes; i++) {
    free(r->scope_bucket[i]);
    free(r->scope_prefix[i]);
  }
  free(r->scope_bucket);
  free(r->scope_prefix);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

int asd_resources_allow(asd_resources *r, const char *bucket, const char *prefix) {
  if (!r || !bucket || !*bucket) return -1;
  char *b = strdup(bucket), *p = strdup(prefix ? prefix : "");
  if (!b || !p) {
    free(b);
    free(p);
    return -1;
  }
  pthread_mutex_lock(&r->mu);
  for (int i = 0; i < r->n_scopes; i++) {
    if (strcmp(r->scope_bucket[i], b) == 0 && strcmp(r->scope_prefix[i], p) == 0) {
      pthread_mutex_unlock(&r->mu);
      free(b);
      free(p);
      return 0;
    }
  }
  char **nb = realloc(r->scope_bucket, sizeof *nb * (size_t)(r->n_scopes + 1));
  if (nb) r->scope_bucket = nb;
  char **np = realloc(r->scope_prefix, sizeof *np * (size_t)(r->n_scopes + 1));
  if (np) r->scope_prefix = np;
  int rc = -1;
  if (nb && np) {
    r->scope_bucket[r->n_scopes] = b;
    r->scope_prefix[r->n_scopes] = p;
    r->n_scopes++;
    rc = 0;
  }
  pthread_mutex_unlock(&r->mu);
  if (rc != 0) {
    free(b);
    free(p);
  }
  return rc;
}

/* Under the lock. */
static int in_scope_locked(const asd_resources *r, const char *bucket, const char *key) {
  if (r->n_scopes == 0) return 1;
  for (int i = 0; i < r->n_scopes; i++)
    if (strcmp(r->scope_bucket[i], bucket) == 0 &&
        strncmp(key, r->scope_prefix[i], strlen(r->scope_prefix[i])) == 0)
      return 1;
  return 0;
}

int asd_resources_in_scope(asd_resources *r, const char *bucket, const char *key) {
  if (!r || !bucket || !key) return 0;
  pthread_mutex_lock(&r->mu);
  int ok = in_scope_locked(r, bucket, key);
  pthread_mutex_unlock(&r->mu);
  return ok;
}

/* Drops the S3 objects of v outside the scope (freeing them), reports the
   first one a registry meets; returns the new count. */
static size_t drop_out_of_scope(asd_resources *r, entry **v, size_t n) {
  size_t kept = 0;
  char first[512] = "";
  pthread_mutex_lock(&r->mu);
  int first_ever = r->out_of_scope == 0;
  for (size_t i = 0; i < n; i++) {
    entry *e = v[i];
    if (e->type != ASD_RES_S3_OBJECT || in_scope_locked(r, e->where ? e->where : "", e->what)) {
      v[kept++] = e;
      continue;
    }
    r->out_of_scope++;
    snprintf(r->last_out_of_scope, sizeof r->last_out_of_scope, "s3://%s/%s", e->where ? e->where : "", e->what);
    if (!first[0]) snprintf(first, sizeof first, "%s", r->last_out_of_scope);
    entry_free(e);
  }
  pthread_mutex_unlock(&r->mu);
  if (first[0] && first_ever)
    CPLError(CE_Warning, CPLE_AppDefined,
             "asyncdetect cleanup: not deleting %s: it is outside the configured input/output bucket and "
             "prefix and the endpoint's own paths (left alone; further such objects are counted in the metrics)",
             first);
  return kept;
}

static size_t slot_of(const asd_resources *r, uint64_t id) {
  uint64_t h = id * 0x9E3779B97F4A7C15ULL;
  return (size_t)(h >> 20) & (r->table_size - 1);
}

/* Doubles the table when it gets crowded; a failed grow just keeps chains longer. */
static void maybe_grow(asd_resources *r) {
  if (r->count < r->table_size * 2) return;
  size_t old_size = r->table_size;
  entry **nt = calloc(old_size * 2, sizeof *nt);
  if (!nt) return;
  entry **old = r->table;
  r->table = nt;
  r->table_size = old_size * 2;
  for (size_t i = 0; i < old_size; i++) {
    entry *e = old[i];
    while (e) {
      entry *n = e->hnext;
      size_t s = slot_of(r, e->id);
      e->hnext = r->table[s];
      r->table[s] = e;
      e = n;
    }
  }
  free(old);
}

/* Removes id from the hash table and the counters; returns the entry. */
static entry *unlink_entry(asd_resources *r, uint64_t id) {
  size_t s = slot_of(r, id);
  entry **pp = &r->table[s];
  while (*pp && (*pp)->id != id) pp = &(*pp)->hnext;
  entry *e = *pp;
  if (!e) return NULL;
  *pp = e->hnext;
  e->hnext = NULL;
  r->count--;
  r->by_type[e->type]--;
  if (e->state == ST_ACTIVE) {
    r->active--;
  } else {
    r->pending--;
    if (e->qprev) e->qprev->qnext = e->qnext; else r->qhead = e->qnext;
    if (e->qnext) e->qnext->qprev = e->qprev; else r->qtail = e->qprev;
    e->qprev = e->qnext = NULL;
  }
  return e;
}

static entry *lookup(asd_resources *r, uint64_t id) {
  entry *e = r->table[slot_of(r, id)];
  while (e && e->id != id) e = e->hnext;
  return e;
}

uint64_t asd_resources_add(asd_resources *r, asd_resource_type type, const char *where,
                           const char *what) {
  if (!r || (int)type < 0 || type >= ASD_RES__COUNT) return 0;
  entry *e = calloc(1, sizeof *e);
  if (!e) return 0;
  e->type = type;
  e->state = ST_ACTIVE;
  e->where = where ? strdup(where) : NULL;
  e->what = strdup(what ? what : "");
  if ((where && !e->where) || !e->what) {
    entry_free(e);
    return 0;
  }
  pthread_mutex_lock(&r->mu);
  e->id = r->next_id++;
  maybe_grow(r);
  size_t s = slot_of(r, e->id);
  e->hnext = r->table[s];
  r->table[s] = e;
  r->count++;
  r->by_type[type]++;
  r->active++;
  r->added++;
  uint64_t id = e->id;
  pthread_mutex_unlock(&r->mu);
  return id;
}

static int deletable(const entry *e) {
  return e->type == ASD_RES_S3_OBJECT || e->type == ASD_RES_TEMP_FILE;
}

int asd_resources_dispose(asd_resources *r, uint64_t id) {
  if (!r) return -1;
  pthread_mutex_lock(&r->mu);
  entry *e = lookup(r, id);
  if (!e) {
    pthread_mutex_unlock(&r->mu);
    return -1;
  }
  if (e->state == ST_PENDING) { /* already disposed */
    pthread_mutex_unlock(&r->mu);
    return 0;
  }
  if (!deletable(e)) {
    entry_free(unlink_entry(r, id));
  } else if (r->policy == ASD_CLEANUP_DISABLED) {
    entry_free(unlink_entry(r, id));
    r->retained++;
  } else {
    r->active--;
    r->pending++;
    e->state = ST_PENDING;
    e->due = asd_time_monotonic() + r->delay;
    e->qprev = r->qtail;
    e->qnext = NULL;
    if (r->qtail) r->qtail->qnext = e; else r->qhead = e;
    r->qtail = e;
  }
  pthread_mutex_unlock(&r->mu);
  return 0;
}

int asd_resources_release(asd_resources *r, uint64_t id) {
  if (!r) return -1;
  pthread_mutex_lock(&r->mu);
  entry *e = unlink_entry(r, id);
  pthread_mutex_unlock(&r->mu);
  entry_free(e);
  return e ? 0 : -1;
}

int asd_resources_retain(asd_resources *r, uint64_t id) {
  if (!r) return -1;
  pthread_mutex_lock(&r->mu);
  entry *e = unlink_entry(r, id);
  if (e && deletable(e)) r->retained++;
  pthread_mutex_unlock(&r->mu);
  entry_free(e);
  return e ? 0 : -1;
}

static int cmp_by_bucket(const void *a, const void *b) {
  const entry *x = *(entry *const *)a, *y = *(entry *const *)b;
  return strcmp(x->where ? x->where : "", y->where ? y->where : "");
}

static void note_failure(asd_resources *r, long long n, const char *what) {
  pthread_mutex_lock(&r->mu);
  r->delete_failed += n;
  snprintf(r->last_failure, sizeof r->last_failure, "%s", what);
  pthread_mutex_unlock(&r->mu);
}

/* Deletes a detached batch; frees its entries.  Returns the number deleted. */
static long long delete_batch(asd_resources *r, entry **v, size_t n) {
  long long ok = 0;
  n = drop_out_of_scope(r, v, n);
  qsort(v, n, sizeof *v, cmp_by_bucket);
  size_t i = 0;
  while (i < n) {
    entry *e = v[i];
    if (e->type == ASD_RES_TEMP_FILE) {
      if (unlink(e->what) == 0 || errno == ENOENT) {
        ok++;
      } else {
        char msg[512];
        snprintf(msg, sizeof msg, "cannot delete temporary file %s: %s", e->what, strerror(errno));
        note_failure(r, 1, msg);
      }
      i++;
      continue;
    }
    /* A run of S3 objects of one bucket, at most 1000 keys per request. */
    size_t j = i;
    while (j < n && j - i < 1000 && v[j]->type == ASD_RES_S3_OBJECT &&
           strcmp(v[j]->where ? v[j]->where : "", e->where ? e->where : "") == 0)
      j++;
    int m = (int)(j - i);
    const char **keys = malloc((size_t)m * sizeof *keys);
    int *failed = calloc((size_t)m, sizeof *failed);
    if (!keys || !failed || !r->s3_delete) {
      note_failure(r, m, r->s3_delete ? "out of memory while deleting objects"
                                      : "no S3 delete function: objects not deleted");
    } else {
      for (int k = 0; k < m; k++) keys[k] = v[i + (size_t)k]->what;
      char err[400] = "";
      int rc = r->s3_delete(r->ctx, e->where ? e->where : "", keys, m, failed, err, sizeof err);
      int nfail = 0;
      for (int k = 0; k < m; k++) nfail += (rc != 0 || failed[k]) ? 1 : 0;
      ok += m - nfail;
      if (nfail) {
        char msg[512];
        snprintf(msg, sizeof msg, "%d of %d objects not deleted from bucket %s: %s", nfail, m,
                 e->where ? e->where : "?", err[0] ? err : "per-key errors");
        note_failure(r, nfail, msg);
      }
    }
    free(keys);
    free(failed);
    i = j;
  }
  for (size_t k = 0; k < n; k++) entry_free(v[k]);
  pthread_mutex_lock(&r->mu);
  r->deleted += ok;
  pthread_mutex_unlock(&r->mu);
  return ok;
}

long long asd_resources_collect(asd_resources *r, double now, int force) {
  if (!r) return 0;
  long long total = 0;
  for (;;) {
    /* Detach up to 4000 entries at a time so memory stays bounded even for
     * a very large forced cleanup. */
    size_t cap = 4000, n = 0;
    entry **v = malloc(cap * sizeof *v);
    if (!v) return total;
    pthread_mutex_lock(&r->mu);
    while (n < cap && r->qhead && (force || r->qhead->due <= now))
      v[n++] = unlink_entry(r, r->qhead->id);
    if (force) {
      for (size_t s = 0; s < r->table_size && n < cap; s++) {
        entry *e = r->table[s];
        while (e && n < cap) {
          entry *next = e->hnext;
          if (deletable(e)) v[n++] = unlink_entry(r, e->id);
          e = next;
        }
      }
    }
    pthread_mutex_unlock(&r->mu);
    if (n == 0) {
      free(v);
      return total;
    }
    total += delete_batch(r, v, n);
    free(v);
    if (n < cap) return total;
  }
}

long long asd_resources_hand_over(asd_resources *r, asd_pending_fn fn, void *ctx) {
  if (!r || !fn) return 0;
  long long n = 0;
  double mono = asd_time_monotonic(), wall = asd_time_wall();
  for (;;) {
    /* One entry at a time: fn may be slow (a journal write) and must not
       run under the lock. */
    pthread_mutex_lock(&r->mu);
    entry *e = r->qhead;
    while (e && e->type != ASD_RES_S3_OBJECT) e = e->qnext;
    if (e) unlink_entry(r, e->id);
    pthread_mutex_unlock(&r->mu);
    if (!e) return n;
    fn(ctx, e->where ? e->where : "", e->what, wall + (e->due - mono));
    entry_free(e);
    n++;
  }
}

long long asd_resources_delete_now(asd_resources *r, const char *bucket, const char *const *keys, int n,
                                   int *outcome) {
  if (!r || !bucket || !keys || n <= 0 || n > 1000) return 0;
  int *failed = calloc((size_t)n, sizeof *failed);
  const char **in = malloc((size_t)n * sizeof *in);
  int *idx = malloc((size_t)n * sizeof *idx);
  long long ok = 0;
  if (!failed || !in || !idx) {
    for (int i = 0; outcome && i < n; i++) outcome[i] = 0;
    goto done;
  }
  int m = 0;
  char first[512] = "";
  pthread_mutex_lock(&r->mu);
  for (int i = 0; i < n; i++) {
    if (in_scope_locked(r, bucket, keys[i])) {
      idx[m] = i;
      in[m++] = keys[i];
      continue;
    }
    if (outcome) outcome[i] = -1;
    if (!first[0] && r->out_of_scope == 0) snprintf(first, sizeof first, "s3://%s/%s", bucket, keys[i]);
    r->out_of_scope++;
    snprintf(r->last_out_of_scope, sizeof r->last_out_of_scope, "s3://%s/%s", bucket, keys[i]);
  }
  pthread_mutex_unlock(&r->mu);
  if (first[0])
    CPLError(CE_Warning, CPLE_AppDefined,
             "asyncdetect cleanup: not deleting %s: it is outside the configured input/output bucket and "
             "prefix and the endpoint's own paths (left alone)",
             first);
  if (m > 0) {
    char err[400] = "";
    int rc = r->s3_delete ? r->s3_delete(r->ctx, bucket, in, m, failed, err, sizeof err) : -1;
    int nfail = 0;
    for (int k = 0; k < m; k++) {
      int bad = rc != 0 || failed[k];
      nfail += bad;
      if (outcome) outcome[idx[k]] = bad ? 0 : 1;
    }
    ok = m - nfail;
    if (nfail) {
      char msg[512];
      snprintf(msg, sizeof msg, "%d of %d objects not deleted from bucket %s: %s", nfail, m, bucket,
               err[0] ? err : r->s3_delete ? "per-key errors" : "no S3 delete function");
      note_failure(r, nfail, msg);
    }
    pthread_mutex_lock(&r->mu);
    r->deleted += ok;
    pthread_mutex_unlock(&r->mu);
  }
done:
  free(failed);
  free(in);
  free(idx);
  return ok;
}

long long asd_resources_pending(asd_resources *r, double *next_due) {
  if (!r) return 0;
  pthread_mutex_lock(&r->mu);
  long long p = r->pending;
  if (next_due) *next_due = r->qhead ? r->qhead->due : 0;
  pthread_mutex_unlock(&r->mu);
  return p;
}

void asd_resources_get_stats(asd_resources *r, asd_resource_stats *out) {
  memset(out, 0, sizeof *out);
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  out->total = (long long)r->count;
  for (int i = 0; i < ASD_RES__COUNT; i++) out->by_type[i] = r->by_type[i];
  out->active = r->active;
  out->pending = r->pending;
  out->deleted = r->deleted;
  out->delete_failed = r->delete_failed;
  out->retained = r->retained;
  out->added = r->added;
  snprintf(out->last_failure, sizeof out->last_failure, "%s", r->last_failure);
  out->out_of_scope = r->out_of_scope;
  snprintf(out->last_out_of_scope, sizeof out->last_out_of_scope, "%s", r->last_out_of_scope);
  pthread_mutex_unlock(&r->mu);
}

char *asd_resources_stats_json(asd_resources *r) {
  asd_resource_stats s;
  asd_resources_get_stats(r, &s);
  asd_buf b;
  asd_buf_init(&b);
  int rc = asd_buf_appendf(&b, "{\"total_resources\":%lld,\"by_type\":{", s.total);
  for (int i = 0; i < ASD_RES__COUNT; i++)
    rc |= asd_buf_appendf(&b, "%s\"%s\":{\"total\":%lld}", i ? "," : "",
                          asd_resource_type_name((asd_resource_type)i), s.by_type[i]);
  rc |= asd_buf_appendf(&b,
                        "},\"active\":%lld,\"pending_deletion\":%lld,\"deleted\":%lld,"
                        "\"delete_failed\":%lld,\"retained\":%lld,\"added\":%lld,\"out_of_scope\":%lld,"
                        "\"policy\":\"%s\",\"last_failure\":\"",
                        s.active, s.pending, s.deleted, s.delete_failed, s.retained, s.added, s.out_of_scope,
                        r ? asd_cleanup_policy_name(r->policy) : "unknown");
  for (const char *p = s.last_failure; *p && rc == 0; p++) {
    if (*p == '"' || *p == '\\') rc |= asd_buf_append(&b, "\\", 1);
    if ((unsigned char)*p >= 0x20) rc |= asd_buf_append(&b, p, 1);
  }
  rc |= asd_buf_append_str(&b, "\"}");
  if (rc) {
    asd_buf_free(&b);
    return NULL;
  }
  return (char *)asd_buf_take(&b, NULL);
}
