/*
 * poller.h: the timer heap that schedules every poll of every job (internal).
 *
 * A binary min-heap of (due time, sequence, pointer).  The sequence number
 * breaks ties in insertion order so that jobs due at the same instant are
 * served first come, first served.  The heap is not locked: its owner (the
 * pool) holds its own mutex around it, because the decision to sleep or to
 * pop must be taken under the same lock as the push that may wake it.
 */
#ifndef ASD_ENGINE_POLLER_H
#define ASD_ENGINE_POLLER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct asd_timer_item {
  double due;
  uint64_t seq;
  void *ptr;
} asd_timer_item;

typedef struct asd_timer_heap {
  asd_timer_item *items;
  size_t n, cap;
  uint64_t next_seq;
} asd_timer_heap;

void asd_timer_heap_init(asd_timer_heap *h);
void asd_timer_heap_free(asd_timer_heap *h);
/* Returns 0, or -1 when memory runs out (nothing pushed). */
int asd_timer_heap_push(asd_timer_heap *h, double due, void *ptr);
/* The earliest item without removing it; NULL when empty. */
const asd_timer_item *asd_timer_heap_peek(const asd_timer_heap *h);
/* Removes the earliest item into *out; returns 0, or -1 when empty. */
int asd_timer_heap_pop(asd_timer_heap *h, asd_timer_item *out);
size_t asd_timer_heap_size(const asd_timer_heap *h);
/* Sets every item's due time to due(ptr, ctx), the item whose ptr is
 * `first` (may be NULL) before the others, and restores the heap order. */
void asd_timer_heap_reschedule(asd_timer_heap *h, double (*due)(void *ptr, void *ctx), void *ctx,
                               const void *first);

#ifdef __cplusplus
}
#endif

#endif
