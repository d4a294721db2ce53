// Unit tests for the adaptive-polling estimator (plugin/engine/latency.c).
//
// Everything here is deterministic: the estimator never reads a clock, and
// the pool-and-endpoint simulation at the end runs on simulated time with a
// seeded generator, so no wall-clock duration is measured or asserted.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <queue>
#include <random>
#include <vector>

#include "asyncdetect/asd_config.h"
#include "engine/latency.h"

namespace {

asd_async_config defaults() {
  asd_async_config c;
  asd_config_init(&c);
  c.polling_jitter = 0;  // exact schedules unless a test wants jitter
  return c;
}

struct Est {
  explicit Est(const asd_async_config &c) : l(asd_latency_new(&c)) {}
  ~Est() { asd_latency_free(l); }
  asd_latency *l;
};

}  // namespace

TEST(EngineLatency, ScheduleCapFollowsTheConfiguredSchedule) {
  asd_async_config c = defaults();  // 30 s, x1.5, at most 300 s
  EXPECT_DOUBLE_EQ(30, asd_latency_schedule_cap(&c, 0));
  EXPECT_DOUBLE_EQ(30, asd_latency_schedule_cap(&c, 29.9));
  EXPECT_DOUBLE_EQ(75, asd_latency_schedule_cap(&c, 30));
  EXPECT_DOUBLE_EQ(142.5, asd_latency_schedule_cap(&c, 100));
  // Past the point where the interval reaches its maximum the cap steps by it.
  double t = 0;
  for (int k = 0; k < 200; k++) t += asd_config_poll_interval(&c, k);
  EXPECT_NEAR(t, asd_latency_schedule_cap(&c, t - 1), 1e-6);
  EXPECT_NEAR(t + 300, asd_latency_schedule_cap(&c, t), 1e-6);
}

TEST(EngineLatency, QuantilesOfTheWindowAndTheFirstResultFlag) {
  Est e(defaults());
  EXPECT_EQ(-1, asd_latency_quantile(e.l, 0.5));
  EXPECT_EQ(0, asd_latency_count(e.l));
  // Tight brackets are kept as their middle.
  EXPECT_EQ(1, asd_latency_observe(e.l, 0, 9.9, 10.1));
  EXPECT_EQ(0, asd_latency_observe(e.l, 0, 19.9, 20.1));
  EXPECT_EQ(0, asd_latency_observe(e.l, 0, 29.9, 30.1));
  EXPECT_EQ(3, asd_latency_count(e.l));
  EXPECT_DOUBLE_EQ(10, asd_latency_quantile(e.l, 0));
  EXPECT_DOUBLE_EQ(20, asd_latency_quantile(e.l, 0.5));
  EXPECT_DOUBLE_EQ(30, asd_latency_quantile(e.l, 1));
  // A result found at the first poll is taken from (0.8 hi, hi].
  Est f(defaults());
  asd_latency_observe(f.l, 0, 0, 10);
  EXPECT_DOUBLE_EQ(9, asd_latency_quantile(f.l, 0.5));
  // Nonsense is ignored.
  EXPECT_EQ(0, asd_latency_observe(f.l, 0, 0, NAN));
  EXPECT_EQ(0, asd_latency_observe(f.l, 0, 0, -1));
  EXPECT_EQ(1, asd_latency_count(f.l));
}

TEST(EngineLatency, WindowForgetsTheOldestResults) {
  Est e(defaults());
  for (int i = 0; i < ASD_LATENCY_WINDOW; i++) asd_latency_observe(e.l, 0, 99.9, 100.1);
  EXPECT_DOUBLE_EQ(100, asd_latency_quantile(e.l, 0.5));
  // The endpoint speeds up: after a window of new results nothing old is left.
  for (int i = 0; i < ASD_LATENCY_WINDOW; i++) asd_latency_observe(e.l, 0, 0.99, 1.01);
  EXPECT_DOUBLE_EQ(1, asd_latency_quantile(e.l, 1));
  EXPECT_EQ(2 * ASD_LATENCY_WINDOW, asd_latency_count(e.l));
  // Half a window later, the median is back up, the minimum is not.
  for (int i = 0; i < ASD_LATENCY_WINDOW / 2 + 1; i++) asd_latency_observe(e.l, 0, 4.99, 5.01);
  EXPECT_DOUBLE_EQ(5, asd_latency_quantile(e.l, 0.5));
  EXPECT_DOUBLE_EQ(1, asd_latency_quantile(e.l, 0));
}

// Results of one model with a spread: 100 of them from 80.2 to 100 s (the
// window keeps the last 64, 87.4..100), one group (no gap wider than x1.25).
static void observe_one_group(asd_latency *l) {
  for (int i = 1; i <= 100; i++) asd_latency_observe(l, 0, 80 + 0.2 * i - 0.001, 80 + 0.2 * i + 0.001);
}

TEST(EngineLatency, InformedScheduleIsMedianThenP90ThenMaxThenBackoff) {
  asd_async_config c = defaults();
  Est e(c);
  observe_one_group(e.l);
  const double q50 = asd_latency_quantile(e.l, 0.5), q90 = asd_latency_quantile(e.l, 0.9),
               q100 = asd_latency_quantile(e.l, 1);
  ASSERT_LT(q50, q90);
  ASSERT_LT(q90, q100);
  uintptr_t id = 1;
  // Once results are known the fixed schedule's early points (30 s, 75 s)
  // are no bound: they could not find anything for a job this slow.
  EXPECT_DOUBLE_EQ(q50, asd_latency_next_age(e.l, id, 0, 0, 0, 0, 0.5));
  EXPECT_DOUBLE_EQ(q90, asd_latency_next_age(e.l, id, 0, q50, q50, 0, 0.5));
  // The bound is max_polling_interval after the last poll (or the invocation).
  c.max_polling_interval = 20;
  Est m(c);
  observe_one_group(m.l);
  EXPECT_DOUBLE_EQ(20, asd_latency_next_age(m.l, id, 0, 0, 0, 0, 0.5));
  EXPECT_DOUBLE_EQ(q50, asd_latency_next_age(m.l, id, 0, 85, 85, 0, 0.5));
  EXPECT_DOUBLE_EQ(150 + 20, asd_latency_next_age(m.l, id, 0, 150, 150, 0, 0.5));  // not 150 x 1.2
  // A job already past its bound (parked long, a busy machine) is polled at once.
  EXPECT_DOUBLE_EQ(50, asd_latency_next_age(m.l, id, 0, 50, 10, 0, 0.5));
  // With a generous schedule the estimate decides.
  c.polling_interval = 1000;
  c.max_polling_interval = 1000;
  Est g(c);
  observe_one_group(g.l);
  EXPECT_DOUBLE_EQ(q50, asd_latency_next_age(g.l, id, 0, 0, 0, 0, 0.5));
  EXPECT_DOUBLE_EQ(q90, asd_latency_next_age(g.l, id, 0, q50, q50, 0, 0.5));
  EXPECT_DOUBLE_EQ(q100, asd_latency_next_age(g.l, id, 0, q90, q90, 0, 0.5));
  EXPECT_DOUBLE_EQ(q100 * 1.2, asd_latency_next_age(g.l, id, 0, q100, q100, 0, 0.5));
  EXPECT_DOUBLE_EQ(q100 * 1.44, asd_latency_next_age(g.l, id, 0, q100 * 1.2, q100 * 1.2, 0, 0.5));
  // A job whose median passed while it waited unpolled is polled at once.
  EXPECT_DOUBLE_EQ(q50 + 5, asd_latency_next_age(g.l, id, 0, q50 + 5, 0, 0, 0.5));
  // The configured jitter is for the scout and parked jobs only; once results
  // are known a job's first poll is spread over +/-20 % of the median (jobs
  // invoked together must not all be found, and replaced, at one instant),
  // and its later polls are not spread at all.
  c.polling_jitter = 0.1;
  Est h(c);
  EXPECT_DOUBLE_EQ(0.1 * 0.9, asd_latency_next_age(h.l, id, 0, 0, 0, 0, 0));
  EXPECT_DOUBLE_EQ(1000 * 1.0, asd_latency_next_age(h.l, 2, 0, 0, 0, 0, 0));  // parked: the cap
  observe_one_group(h.l);
  EXPECT_DOUBLE_EQ(0.8 * q50, asd_latency_next_age(h.l, id, 0, 0, 0, 0, 0));
  EXPECT_DOUBLE_EQ(1.2 * q50, asd_latency_next_age(h.l, id, 0, 0, 0, 0, 1));
  EXPECT_DOUBLE_EQ(q90, asd_latency_next_age(h.l, id, 0, q50, q50, 0, 0));
  EXPECT_DOUBLE_EQ(q90, asd_latency_next_age(h.l, id, 0, q50, q50, 0, 1));
  // A job invoked long before (parked, rescheduled at the first result) is
  // still polled at once, whatever its spread.
  EXPECT_DOUBLE_EQ(1.5 * q50, asd_latency_next_age(h.l, id, 0, 1.5 * q50, 30, 0, 1));
}

TEST(EngineLatency, BeforeTheFirstResultOneScoutProbesAndTheOthersPark) {
  asd_async_config c = defaults();
  Est e(c);
  const uintptr_t scout = 10, other = 20;
  // The first job that asks probes from 0.1 s, backing off by the multiplier.
  EXPECT_DOUBLE_EQ(0.1, asd_latency_next_age(e.l, scout, 0, 0, 0, 0, 0.5));
  EXPECT_DOUBLE_EQ(0.15, asd_latency_next_age(e.l, scout, 0, 0.1, 0.1, 0, 0.5));
  // Its probes never go past the configured schedule.
  EXPECT_DOUBLE_EQ(30, asd_latency_next_age(e.l, scout, 0, 25, 25, 0, 0.5));
  // The others wait on the configured schedule.
  EXPECT_DOUBLE_EQ(30, asd_latency_next_age(e.l, other, 0, 0, 0, 0, 0.5));
  EXPECT_DOUBLE_EQ(75, asd_latency_next_age(e.l, other, 0, 30, 30, 0, 0.5));
  // The scout ends without a result: the caller must reschedule, and the next
  // job to ask becomes the scout.
  EXPECT_EQ(0, asd_latency_job_ended(e.l, other));
  EXPECT_EQ(1, asd_latency_job_ended(e.l, scout));
  EXPECT_DOUBLE_EQ(0.1, asd_latency_next_age(e.l, other, 0, 0, 0, 0, 0.5));
  EXPECT_DOUBLE_EQ(30, asd_latency_next_age(e.l, scout, 0, 0, 0, 0, 0.5));
  // The first result ends scouting for everyone.
  EXPECT_EQ(1, asd_latency_observe(e.l, 0, 4.9, 5.1));
  EXPECT_DOUBLE_EQ(5, asd_latency_next_age(e.l, scout, 0, 0, 0, 0, 0.5));
  EXPECT_EQ(0, asd_latency_job_ended(e.l, other));
}

// ---------------------------------------------------------------------------
// The pool and a FIFO endpoint with C parallel slots, on simulated time: the
// pool keeps `slots` jobs in flight, invokes a new one as soon as a result is
// seen, and polls as the estimator says, rescheduling its waiting jobs when
// the estimator asks for it (first result, scout gone).  Service times are
// L * (1 +/- spread), uniform.

namespace {

struct SimOut {
  double makespan = 0;
  double polls_per_job = 0;
  long long jobs = 0;
};

SimOut simulate(const asd_async_config &cfg, int C, int slots, int n_jobs, double L, double spread,
                unsigned seed, bool fixed = false, double inv_gap = 0.0005, double early_first = 0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> U(0, 1);
  asd_latency *est = asd_latency_new(&cfg);
  struct Job {
    double t_inv, t_done, last = 0, due = 0;
    int polls = 0, version = 0, ahead = 0;
    bool waiting = false;
  };
  std::vector<Job> jobs;
  int in_flight = 0;
  std::priority_queue<double, std::vector<double>, std::greater<double>> servers;
  for (int i = 0; i < C; i++) servers.push(0);
  using Ev = std::tuple<double, int, int>;  // due, job, version
  std::priority_queue<Ev, std::vector<Ev>, std::greater<Ev>> events;
  auto schedule = [&](int j, double now) {
    Job &b = jobs[j];
    double age = now - b.t_inv;
    if (fixed)  // the configured schedule, as the pool runs it without the estimator
      b.due = now + asd_config_poll_delay(&cfg, b.polls, U(rng));
    else
      b.due = b.t_inv + asd_latency_next_age(est, (uintptr_t)j + 1, b.t_inv, age, b.last, b.ahead, U(rng));
    b.version++;
    events.emplace(b.due, j, b.version);
  };
  auto reschedule_all = [&](double now) {
    // Oldest first, as the pool does, so the oldest waiting job becomes scout.
    for (size_t j = 0; j < jobs.size(); j++)
      if (jobs[j].waiting) schedule((int)j, now);
  };
  auto invoke = [&](double now) {
    Job b;
    b.t_inv = now;
    double start = std::max(now, servers.top());
    servers.pop();
    b.t_done = start + L * (1 + spread * (2 * U(rng) - 1));
    if (early_first > 0 && jobs.empty()) b.t_done = start + early_first * L;
    servers.push(b.t_done);
    b.waiting = true;
    b.ahead = ++in_flight;
    jobs.push_back(b);
    schedule((int)jobs.size() - 1, now);
  };
  for (int i = 0; i < slots && i < n_jobs; i++) invoke(i * inv_gap);
  SimOut out;
  long long polls = 0;
  while (!events.empty()) {
    auto [t, j, version] = events.top();
    events.pop();
    if (version != jobs[j].version || !jobs[j].waiting) continue;
    Job &b = jobs[j];
    b.polls++;
    polls++;
    double age = t - b.t_inv;
    if (t >= b.t_done) {
      b.waiting = false;
      in_flight--;
      int first = asd_latency_observe(est, b.t_inv, b.last, age);
      asd_latency_job_ended(est, (uintptr_t)j + 1);
      out.makespan = t;
      out.jobs++;
      if ((int)jobs.size() < n_jobs) invoke(t);
      if (first) reschedule_all(t);
    } else {
      b.last = age;
      schedule(j, t);
    }
  }
  asd_latency_free(est);
  out.polls_per_job = out.jobs ? (double)polls / (double)out.jobs : 0;
  return out;
}

}  // namespace

// The targets, on the model: with the default configuration and no
// polling settings, an endpoint of C = 64 slots behind the pool's 100 (a
// queue at the endpoint, as with a real async endpoint), latencies with a
// +/-25 % spread: throughput >= 90 % of C/L (less the drain of the last
// wave's spread) and at most 3 polls per job.  The 60 s case needs ten waves:
// with three, even a client that saw every result the instant it appeared
// would get only 81-85 % of C/L (the drain), and when the fixed schedule's
// 30 s and 75 s points bounded the estimate it cost 3.3-3.5 polls per job.
// The 10 s case runs 16 waves, as bench/adaptive_polling.sh does: with 8 the
// drain weighs so much that a perfect client gets 92.5 % on average (seeds
// 1-20), and the spread first poll (+/-20 %, which finds the last jobs up to
// a fifth later) takes the adaptive client from 86.6-92.5 % to 85.2-91.6 %.
TEST(EngineLatency, SimulatedPoolMeetsTheTargets) {
  asd_async_config cfg;
  asd_config_init(&cfg);
  const int slots = cfg.max_concurrent_jobs, C = 64;
  struct Case {
    double L;
    int waves;
  } cases[] = {{0.2, 40}, {1, 20}, {10, 16}, {60, 10}};
  for (const Case &k : cases) {
    for (unsigned seed = 1; seed <= 3; seed++) {
      const int n = C * k.waves;
      SimOut o = simulate(cfg, C, slots, n, k.L, 0.25, seed);
      const double ideal = C / k.L, tput = n / o.makespan;
      SCOPED_TRACE(testing::Message() << "L=" << k.L << " seed=" << seed << " throughput " << tput / ideal
                                      << " of C/L, polls/job " << o.polls_per_job);
      EXPECT_EQ(n, o.jobs);
      EXPECT_GE(tput, 0.9 * ideal * k.waves / (k.waves + 0.25));
      EXPECT_LE(o.polls_per_job, 3.0);
    }
  }
}

// Where the targets are not met on the model (a 60 s model in four waves, an
// endpoint far smaller than the pool, one as large as the pool: see
// bench/RESULTS.md), adaptive polling still beats the fixed schedule it
// replaces on throughput, by a factor of two or more up to 1 s.
TEST(EngineLatency, SimulatedPoolBeatsTheFixedScheduleEverywhere) {
  asd_async_config cfg;
  asd_config_init(&cfg);
  const int slots = cfg.max_concurrent_jobs;
  struct Case {
    double L;
    int C, waves;
  } cases[] = {{60, 64, 4}, {0.2, 16, 40}, {1, 16, 20}, {10, 16, 10}, {1, 100, 10}, {60, 100, 4}};
  for (const Case &k : cases) {
    const int n = k.C * k.waves;
    SimOut a = simulate(cfg, k.C, slots, n, k.L, 0.25, 7);
    SimOut f = simulate(cfg, k.C, slots, n, k.L, 0.25, 7, true);
    const double ideal = std::min(k.C, slots) / k.L;
    std::printf("L=%g C=%d jobs=%d: adaptive %.1f%% of C/L, %.2f polls/job; fixed schedule %.1f%%, %.2f polls/job\n",
                k.L, k.C, n, 100 * n / a.makespan / ideal, a.polls_per_job, 100 * n / f.makespan / ideal,
                f.polls_per_job);
    EXPECT_EQ(n, a.jobs);
    EXPECT_EQ(n, f.jobs);
    EXPECT_LT(a.makespan, f.makespan * (k.L <= 1 ? 0.5 : 1.0)) << "L=" << k.L << " C=" << k.C;
  }
  // 64 jobs at once on a 16-slot 60 s endpoint (one burst four waves deep):
  // here Little's law, with the rate counted between the first wave's
  // results (which come faster than the endpoint's rate), under-stretches,
  // and single seeds swing from 286 s to 434 s either side of the fixed
  // schedule's ~335 s (seed 7: 406 vs 334).  Counting the rate from the
  // first invocation (before session 6) over-stretched by luck here (mean
  // ~318 s) and lost 10-20 points of C/L everywhere a run starts slowly or
  // one result comes early.  Compared over ten seeds: on par.
  double ma = 0, mf = 0;
  for (unsigned seed = 1; seed <= 10; seed++) {
    ma += simulate(cfg, 16, slots, 64, 60, 0.25, seed).makespan;
    mf += simulate(cfg, 16, slots, 64, 60, 0.25, seed, true).makespan;
  }
  std::printf("L=60 C=16 jobs=64, seeds 1-10: mean makespan adaptive %.1f s, fixed schedule %.1f s\n", ma / 10, mf / 10);
  EXPECT_LT(ma, 1.05 * mf);
}

// Little's law for the jobs invoked before the first result (gaps, session
// 6): the rate of results is counted between results.  Counted from the
// first invocation, the wait for the first results (here a slow start and
// one early result) made it ~0.2/s instead of ~11/s, and a job 100 jobs
// behind was expected ~8 model runs late (polled at its bound, 300 s on).
TEST(EngineLatency, QueueEstimateCountsTheRateBetweenResults) {
  Est e(defaults());
  EXPECT_EQ(1, asd_latency_observe(e.l, 0, 4.9, 5.1));  // one early result, invoked at 0
  // The others were invoked 20 s later (a slow start) and come back in a
  // second, ~60 s later.
  for (int i = 1; i < 15; i++) EXPECT_EQ(0, asd_latency_observe(e.l, 20, 59.9 + 0.07 * i, 60 + 0.07 * i));
  // The result that makes the queue estimate usable asks for a re-timing.
  EXPECT_EQ(1, asd_latency_observe(e.l, 20, 60.9, 61));
  EXPECT_EQ(0, asd_latency_observe(e.l, 20, 60.95, 61.05));
  const double q100 = asd_latency_quantile(e.l, 1);
  // A job invoked at 20 s behind 100 others, polled at 60.5 s of age without
  // its result: its next poll comes within the results seen, not minutes on.
  const double next = asd_latency_next_age(e.l, 7, 20, 60.5, 60.5, 100, 0.5);
  EXPECT_GT(next, 60.5);
  EXPECT_LT(next, 1.2 * q100) << "stretched by a rate that counted the wait for the first results";

  // A queue the results do show: one result per second, each 60 s after
  // its invocation.  A job invoked before them behind 100 others waits
  // 100 / (1 per second) = 100 s, and its first poll is stretched there.
  Est q(defaults());
  for (int i = 0; i < 20; i++) asd_latency_observe(q.l, i, 59.9, 60.1);
  EXPECT_NEAR(100, asd_latency_next_age(q.l, 7, 0.5, 0, 0, 100, 0.5), 1e-9);
}

// The same on the model: a slow start (the first burst invoked over 30 s, as
// when the first tiles are still encoded and uploaded) or one early result
// (a tenth of the model's latency) no longer stretches the queued jobs'
// estimates.  Counting the rate from the first invocation, seeds 1-10 gave
// 60 s: 87.7 % of C/L on average, one seed 73.1 %, with the early result,
// and 85.2 % with the slow start (10 s: 85.1 %); now every seed is >= 90 %.
TEST(EngineLatency, SimulatedPoolSurvivesASlowStartAndAnEarlyResult) {
  asd_async_config cfg;
  asd_config_init(&cfg);
  const int slots = cfg.max_concurrent_jobs, C = 64;
  struct Case {
    double L;
    int waves;
    double gap, early;
  } cases[] = {{60, 10, 0.3, 0}, {60, 10, 0.0005, 0.1}, {10, 16, 0.0005, 0.1}};
  for (const Case &k : cases) {
    for (unsigned seed = 1; seed <= 10; seed++) {
      const int n = C * k.waves;
      SimOut o = simulate(cfg, C, slots, n, k.L, 0.25, seed, false, k.gap, k.early);
      const double ideal = C / k.L, tput = n / o.makespan;
      SCOPED_TRACE(testing::Message() << "L=" << k.L << " gap=" << k.gap << " early=" << k.early << " seed=" << seed
                                      << " throughput " << tput / ideal << " of C/L, polls/job " << o.polls_per_job);
      EXPECT_EQ(n, o.jobs);
      EXPECT_GE(tput, 0.9 * ideal * k.waves / (k.waves + 0.25));
      EXPECT_LE(o.polls_per_job, 4.0);
    }
  }
}
