// Unit tests for the engine's timer heap (plugin/engine/poller.c).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "engine/poller.h"

TEST(EnginePoller, PopsInDueOrderWithFifoTies) {
  asd_timer_heap h;
  asd_timer_heap_init(&h);
  int tags[6] = {0, 1, 2, 3, 4, 5};
  ASSERT_EQ(0, asd_timer_heap_push(&h, 3.0, &tags[0]));
  ASSERT_EQ(0, asd_timer_heap_push(&h, 1.0, &tags[1]));
  ASSERT_EQ(0, asd_timer_heap_push(&h, 2.0, &tags[2]));
  ASSERT_EQ(0, asd_timer_heap_push(&h, 1.0, &tags[3]));  // same due as tags[1], later
  ASSERT_EQ(0, asd_timer_heap_push(&h, 0.5, &tags[4]));
  EXPECT_EQ(5u, asd_timer_heap_size(&h));
  EXPECT_EQ(&tags[4], asd_timer_heap_peek(&h)->ptr);
  std::vector<int> order;
  asd_timer_item it;
  while (asd_timer_heap_pop(&h, &it) == 0) order.push_back(*static_cast<int *>(it.ptr));
  EXPECT_EQ((std::vector<int>{4, 1, 3, 2, 0}), order);
  EXPECT_EQ(nullptr, asd_timer_heap_peek(&h));
  EXPECT_EQ(-1, asd_timer_heap_pop(&h, &it));
  asd_timer_heap_free(&h);
}

TEST(EnginePoller, RandomisedAgainstSort) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> u(0, 1000);
  asd_timer_heap h;
  asd_timer_heap_init(&h);
  std::vector<double> expected;
  // Interleave pushes and pops as the pool does.
  std::vector<double> popped;
  for (int round = 0; round < 20000; round++) {
    if (rng() % 3 != 0 || asd_timer_heap_size(&h) == 0) {
      double d = u(rng);
      ASSERT_EQ(0, asd_timer_heap_push(&h, d, nullptr));
    } else {
      asd_timer_item it;
      double top = asd_timer_heap_peek(&h)->due;
      ASSERT_EQ(0, asd_timer_heap_pop(&h, &it));
      EXPECT_EQ(top, it.due);
      if (asd_timer_heap_size(&h)) {
        EXPECT_LE(it.due, asd_timer_heap_peek(&h)->due);
      }
    }
  }
  double last = -1;
  asd_timer_item it;
  while (asd_timer_heap_pop(&h, &it) == 0) {
    EXPECT_LE(last, it.due);
    last = it.due;
  }
  asd_timer_heap_free(&h);
}

// Rescheduling recomputes every due time (the given item first) and keeps
// the heap order, items and sequence numbers.
TEST(EnginePoller, RescheduleRecomputesAndReorders) {
  asd_timer_heap h;
  asd_timer_heap_init(&h);
  std::vector<double> v(200);
  for (size_t i = 0; i < v.size(); i++) {
    v[i] = (double)i;
    ASSERT_EQ(0, asd_timer_heap_push(&h, v[i], &v[i]));
  }
  struct Ctx {
    std::vector<void *> order;
  } ctx;
  // New due time: the reverse of the old order, so the whole heap must move.
  auto due = [](void *ptr, void *c) -> double {
    static_cast<Ctx *>(c)->order.push_back(ptr);
    return 1000.0 - *static_cast<double *>(ptr);
  };
  asd_timer_heap_reschedule(&h, due, &ctx, &v[123]);
  ASSERT_EQ(v.size(), ctx.order.size());
  EXPECT_EQ(&v[123], ctx.order[0]);
  EXPECT_EQ(v.size(), asd_timer_heap_size(&h));
  double last = -1;
  size_t n = 0;
  asd_timer_item it;
  while (asd_timer_heap_pop(&h, &it) == 0) {
    EXPECT_LE(last, it.due);
    EXPECT_DOUBLE_EQ(1000.0 - *static_cast<double *>(it.ptr), it.due);
    last = it.due;
    n++;
  }
  EXPECT_EQ(v.size(), n);
  EXPECT_EQ(&v[0], it.ptr);  // due 1000: the last out
  asd_timer_heap_free(&h);
}
