/*
 * asd_export.h: what libasyncdetect exports.
 *
 * The library is built with -fvisibility=hidden, as curl and SQLite are: a
 * symbol is exported only when its declaration in an installed header
 * (include/asyncdetect/) carries ASD_API.  Everything else, the internal
 * headers that sit next to their .c files (engine/detector_priv.h,
 * engine/poller.h, tiler/blockread.h, run/asd_run.h...), stays inside the
 * library: a program linking the shared library sees exactly the
 * documented API, and two copies of an internal helper can never clash.
 * Tests and the local endpoint, which use internals, link the static
 * library.
 *
 * A new public function: declare it in an installed header with ASD_API in
 * front.  The install test (autotest/install/) checks that the exported
 * symbols are exactly the ASD_API declarations of the installed headers.
 */
#ifndef ASD_EXPORT_H
#define ASD_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define ASD_API __attribute__((visibility("default")))
#else
#define ASD_API
#endif

#endif /* ASD_EXPORT_H */
