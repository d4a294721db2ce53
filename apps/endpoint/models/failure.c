/*
 * failure.c: the OSML "failure" test model, which always fails.
 *
 * Clients need a deterministic way to exercise their failure path: the
 * runtime writes this model's error payload to <failure path>/<uuid>-error.out
 * (async) or answers 424 ModelError (sync).
 */
#include "models/model_impl.h"

int ep_model_failure_run(void *state, const ep_model_input *in, ep_model_output *out) {
  (void)state;
  return ep_model_fail(out, "failure", "this model always fails (%zu payload bytes received)", in->len);
}
