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
 */
#include "asyncdetect/asd_resources.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asyncdetect/asd_common.h"

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
  pthread_mutex_destroy(&r->mu);
  free(r);
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
                        "\"delete_failed\":%lld,\"retained\":%lld,\"added\":%lld,"
                        "\"policy\":\"%s\",\"last_failure\":\"",
                        s.active, s.pending, s.deleted, s.delete_failed, s.retained, s.added,
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
