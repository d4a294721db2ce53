/*
 * fuzz_target.h: what every fuzz target of autotest/fuzz/ shares.
 *
 * A target is one C (or C++) file defining LLVMFuzzerTestOneInput, the
 * libFuzzer entry point, and optionally LLVMFuzzerInitialize.  Each target is
 * built twice: with clang's libFuzzer (-fsanitize=fuzzer, in the build-fuzz
 * tree that scripts/test.sh configures) to search for new inputs, and with
 * replay_main.c in every ordinary build, where it runs once over the seed and
 * regression corpus in autotest/fuzz/corpus/<target>/, so that every input
 * that ever crashed a target stays a test of the normal suite (and of the
 * gcc ASan/UBSan pass).
 *
 * FUZZ_CHECK states an invariant the code under test promises; a violation
 * aborts, which both libFuzzer and the replay driver report as a failure
 * with the input that caused it.
 */
#ifndef ASD_FUZZ_TARGET_H
#define ASD_FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#ifdef __cplusplus
}
#endif

#define FUZZ_CHECK(cond)                                                                   \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      fprintf(stderr, "%s:%d: fuzz invariant violated: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                             \
    }                                                                                      \
  } while (0)

#endif /* ASD_FUZZ_TARGET_H */
