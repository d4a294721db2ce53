/*
 * poller.c: the timer heap behind the pool's polling workers.
 *
 * The seed sleeps in a loop per job, and a naive fix scans every job in
 * flight each second.  Both cost in proportion to the jobs in flight, all
 * the time.  A min-heap keyed on the next poll time costs O(log n) per poll
 * and nothing while no poll is due: a polling worker sleeps on a condition
 * variable until the heap's top is due (or a push brings an earlier one).
 *
 * The heap grows by doubling and never shrinks below its peak; with at most
 * max_concurrent_jobs entries at once, that peak is bounded by the
 * configuration, not by the number of jobs processed.
 *
 * Adaptive polling (latency.c) parks jobs until the first result of a run
 * is known, then wants every parked job moved to its estimated time at once:
 * asd_timer_heap_reschedule recomputes every due time and rebuilds the heap
 * in O(n), which happens a handful of times per run at most.
 */
#include "engine/poller.h"

#include <stdlib.h>

void asd_timer_heap_init(asd_timer_heap *h) {
  h->items = NULL;
  h->n = h->cap = 0;
  h->next_seq = 0;
}

void asd_timer_heap_free(asd_timer_heap *h) {
  free(h->items);
  asd_timer_heap_init(h);
}

static int before(const asd_timer_item *a, const asd_timer_item *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

int asd_timer_heap_push(asd_timer_heap *h, double due, void *ptr) {
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    asd_timer_item *p = realloc(h->items, cap * sizeof *p);
    if (!p) return -1;
    h->items = p;
    h->cap = cap;
  }
  asd_timer_item it = {due, h->next_seq++, ptr};
  size_t i = h->n++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(&it, &h->items[parent])) break;
    h->items[i] = h->items[parent];
    i = parent;
  }
  h->items[i] = it;
  return 0;
}

const asd_timer_item *asd_timer_heap_peek(const asd_timer_heap *h) {
  return h->n ? &h->items[0] : NULL;
}

int asd_timer_heap_pop(asd_timer_heap *h, asd_timer_item *out) {
  if (h->n == 0) return -1;
  if (out) *out = h->items[0];
  asd_timer_item last = h->items[--h->n];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const asd_timer_item *best = &last;
    if (l < h->n && before(&h->items[l], best)) {
      m = l;
      best = &h->items[l];
    }
    if (r < h->n && before(&h->items[r], best)) m = r;
    if (m == i) break;
    h->items[i] = h->items[m];
    i = m;
  }
  if (h->n) h->items[i] = last;
  return 0;
}

size_t asd_timer_heap_size(const asd_timer_heap *h) { return h->n; }

/* Moves items[i] down to its place (Floyd's heap construction). */
static void sift_down(asd_timer_heap *h, size_t i) {
  asd_timer_item it = h->items[i];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const asd_timer_item *best = &it;
    if (l < h->n && before(&h->items[l], best)) {
      m = l;
      best = &h->items[l];
    }
    if (r < h->n && before(&h->items[r], best)) m = r;
    if (m == i) break;
    h->items[i] = h->items[m];
    i = m;
  }
  h->items[i] = it;
}

void asd_timer_heap_reschedule(asd_timer_heap *h, double (*due)(void *ptr, void *ctx), void *ctx,
                               const void *first) {
  for (size_t i = 0; i < h->n; i++)
    if (h->items[i].ptr == first) h->items[i].due = due(h->items[i].ptr, ctx);
  for (size_t i = 0; i < h->n; i++)
    if (h->items[i].ptr != first) h->items[i].due = due(h->items[i].ptr, ctx);
  for (size_t i = h->n / 2; i-- > 0;) sift_down(h, i);
}
