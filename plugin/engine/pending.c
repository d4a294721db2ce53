/*
 * pending.c: the list of deletions that outlive a process (asd_pending.h).
 *
 * The list is small (one entry per object of the last delay window) and is
 * written once at the end of a run and read once at the start of the next,
 * so it is kept as one JSON text in a journal note rather than as a table:
 * the journal's note is an upsert, so the list replaces itself and never
 * grows with the history.  json-c writes and reads it; a malformed note (a
 * hand-edited journal) is reported and ignored, never half-applied.
 *
 * Deleting goes through a resource registry, so the deletion scope of the
 * current configuration applies to what an earlier run (or an edited
 * journal) asked for: an entry outside it leaves the list undeleted, with
 * the registry's warning.
 */
#include "asyncdetect/asd_pending.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "asyncdetect/asd_journal.h"
#include "cpl_conv.h"

#define NOTE_KEY "pending_deletions"

void asd_pending_init(asd_pending_list *l) { memset(l, 0, sizeof *l); }

void asd_pending_free(asd_pending_list *l) {
  if (!l) return;
  for (size_t i = 0; i < l->n; i++) {
    free(l->items[i].bucket);
    free(l->items[i].key);
  }
  free(l->items);
  memset(l, 0, sizeof *l);
}

int asd_pending_add(asd_pending_list *l, const char *bucket, const char *key, double due) {
  if (!l || !bucket || !key) return -1;
  for (size_t i = 0; i < l->n; i++) {
    if (strcmp(l->items[i].bucket, bucket) == 0 && strcmp(l->items[i].key, key) == 0) {
      if (due > l->items[i].due) l->items[i].due = due;
      return 0;
    }
  }
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 16;
    asd_pending_item *ni = realloc(l->items, nc * sizeof *ni);
    if (!ni) return -1;
    l->items = ni;
    l->cap = nc;
  }
  char *b = strdup(bucket), *k = strdup(key);
  if (!b || !k) {
    free(b);
    free(k);
    return -1;
  }
  l->items[l->n].bucket = b;
  l->items[l->n].key = k;
  l->items[l->n].due = due;
  l->n++;
  return 0;
}

void asd_pending_collect_fn(void *ctx, const char *bucket, const char *key, double due_wall) {
  asd_pending_add(ctx, bucket, key, due_wall);
}

char *asd_pending_to_json(const asd_pending_list *l) {
  json_object *a = json_object_new_array();
  if (!a) return NULL;
  for (size_t i = 0; l && i < l->n; i++) {
    json_object *e = json_object_new_array();
    json_object_array_add(e, json_object_new_string(l->items[i].bucket));
    json_object_array_add(e, json_object_new_string(l->items[i].key));
    json_object_array_add(e, json_object_new_double(l->items[i].due));
    json_object_array_add(a, e);
  }
  const char *s = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN);
  char *out = s ? strdup(s) : NULL;
  json_object_put(a);
  return out;
}

int asd_pending_from_json(asd_pending_list *l, const char *text) {
  if (!l || !text) return -1;
  json_object *a = json_tokener_parse(text);
  if (!a || !json_object_is_type(a, json_type_array)) {
    if (a) json_object_put(a);
    return -1;
  }
  size_t n = json_object_array_length(a);
  for (size_t i = 0; i < n; i++) { /* validate everything before adding anything */
    json_object *e = json_object_array_get_idx(a, i);
    if (!json_object_is_type(e, json_type_array) || json_object_array_length(e) != 3 ||
        !json_object_is_type(json_object_array_get_idx(e, 0), json_type_string) ||
        !json_object_is_type(json_object_array_get_idx(e, 1), json_type_string) ||
        !(json_object_is_type(json_object_array_get_idx(e, 2), json_type_double) ||
          json_object_is_type(json_object_array_get_idx(e, 2), json_type_int))) {
      json_object_put(a);
      return -1;
    }
  }
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    json_object *e = json_object_array_get_idx(a, i);
    rc = asd_pending_add(l, json_object_get_string(json_object_array_get_idx(e, 0)),
                         json_object_get_string(json_object_array_get_idx(e, 1)),
                         json_object_get_double(json_object_array_get_idx(e, 2)));
  }
  json_object_put(a);
  return rc;
}

int asd_pending_load(asd_pending_list *l, struct asd_journal *j) {
  char *note = asd_journal_get_note(j, NOTE_KEY);
  if (!note || !*note) {
    CPLFree(note);
    return 0;
  }
  int rc = asd_pending_from_json(l, note);
  CPLFree(note);
  return rc;
}

int asd_pending_save(const asd_pending_list *l, struct asd_journal *j) {
  if (!l || l->n == 0) {
    char *old = asd_journal_get_note(j, NOTE_KEY);
    int had = old && *old;
    CPLFree(old);
    return had ? asd_journal_set_note(j, NOTE_KEY, "") : 0;
  }
  char *text = asd_pending_to_json(l);
  if (!text) return -1;
  int rc = asd_journal_set_note(j, NOTE_KEY, text);
  free(text);
  return rc;
}

double asd_pending_next_due(const asd_pending_list *l) {
  double t = 0;
  for (size_t i = 0; l && i < l->n; i++)
    if (t == 0 || l->items[i].due < t) t = l->items[i].due;
  return t;
}

size_t asd_pending_carry_out(asd_pending_list *l, asd_resources *r, double now_wall, long long *deleted,
                             long long *dropped) {
  long long del = 0, drop = 0;
  /* done[i]: 0 = to do, 1 = tried and failed (kept), 2 = deleted or dropped
     (removed at the end, so that indices stay valid meanwhile). */
  unsigned char *done = l->n ? calloc(l->n, 1) : NULL;
  if (l->n && !done) return l->n;
  for (;;) {
    /* Bucket by bucket, at most 1000 keys per request. */
    const char *bucket = NULL;
    const char *keys[1000];
    size_t at[1000];
    int m = 0;
    for (size_t i = 0; i < l->n && m < 1000; i++) {
      asd_pending_item *it = &l->items[i];
      if (done[i] || it->due > now_wall) continue;
      if (!bucket) bucket = it->bucket;
      if (strcmp(bucket, it->bucket) != 0) continue;
      keys[m] = it->key;
      at[m++] = i;
    }
    if (m == 0) break;
    int outcome[1000];
    del += asd_resources_delete_now(r, bucket, keys, m, outcome);
    for (int k = 0; k < m; k++) {
      done[at[k]] = outcome[k] == 0 ? 1 : 2;
      if (outcome[k] == -1) drop++;
    }
  }
  size_t kept = 0;
  for (size_t i = 0; i < l->n; i++) {
    if (done[i] == 2) {
      free(l->items[i].bucket);
      free(l->items[i].key);
    } else {
      l->items[kept++] = l->items[i];
    }
  }
  l->n = kept;
  free(done);
  if (deleted) *deleted = del;
  if (dropped) *dropped = drop;
  return l->n;
}
