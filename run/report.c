/*
 * report.c: how the run reports what went wrong, as one line with context.
 *
 * While a run sets itself up (opening the input, the endpoint client, the
 * output, the journal), the modules it calls report their own failures
 * through CPLError in their own words ("asd_writer: ...").  A user wants one
 * line that says what the utility was doing and why it failed ("cannot write
 * output 'x.gpkg': ..."), so during setup those CPLErrors are captured
 * instead of printed: the first failure is kept to be quoted in the line,
 * warnings are re-emitted unchanged once the capture ends, debug messages go
 * through at once.
 *
 * asd_run_fail() is the one way a stage gives up: it ends the capture (so
 * the line is printed, not captured) and emits the line, with newlines
 * flattened.  asd_run_report_first() quotes the captured cause without the
 * module prefix that means nothing to a user.
 *
 * Message prefixes, the one rule: a library module that reports through
 * CPLError begins its message with "asd_<module>: " (asd_writer:, asd_plan:,
 * asd_encoder:, asd_journal:...); the engine's asd_error messages carry no
 * prefix (their code says where they come from, and asd_error_format() puts
 * its text first); the run's own lines carry none either (the utility's
 * error handler names the program).  The run strips "asd_<module>: " when
 * it quotes a cause, and nothing else.
 *
 * Every line the run prints loses the query strings of the URLs it quotes
 * (inputs.c asd_scrub_urls): a presigned source's signature is a secret.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "asd_run.h"
#include "cpl_conv.h"
#include "cpl_error.h"
#include "cpl_string.h"

static void CPL_STDCALL capture_handler(CPLErr cls, CPLErrorNum num, const char *msg) {
  asd_run_report *c = CPLGetErrorHandlerUserData();
  if (!c) return;
  if (cls == CE_Failure || cls == CE_Fatal) {
    if (!c->first[0]) snprintf(c->first, sizeof c->first, "%s", msg);
  } else if (cls == CE_Warning) {
    if (CSLCount(c->warnings) < 20) c->warnings = CSLAddString(c->warnings, msg);
  } else if (cls == CE_Debug) {
    CPLDefaultErrorHandler(cls, num, msg);
  }
}

void asd_run_report_begin(asd_run_report *c) {
  memset(c, 0, sizeof *c);
  CPLErrorReset();
  CPLPushErrorHandlerEx(capture_handler, c);
  c->active = 1;
}

void asd_run_report_end(asd_run_report *c) {
  if (!c->active) return;
  c->active = 0;
  CPLPopErrorHandler();
  for (char **w = c->warnings; w && *w; w++) CPLError(CE_Warning, CPLE_AppDefined, "%s", *w);
  CSLDestroy(c->warnings);
  c->warnings = NULL;
}

/* The one rule for message prefixes: a module of the library that reports
   through CPLError starts its message with its name, "asd_<module>: ", so a
   library user's log says where it comes from; a line of the run, which
   says what was being done, quotes the cause without it. */
const char *asd_run_strip_module_prefix(const char *msg) {
  if (!STARTS_WITH(msg, "asd_")) return msg;
  const char *p = msg + 4;
  while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_') p++;
  return p[0] == ':' && p[1] == ' ' ? p + 2 : msg;
}

const char *asd_run_report_first(const asd_run_report *c, const char *fallback) {
  if (!c->first[0]) return fallback;
  return asd_run_strip_module_prefix(c->first);
}

static void emit(const char *fmt, va_list ap) {
  char msg[2048];
  vsnprintf(msg, sizeof msg, fmt, ap);
  for (char *p = msg; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  /* A quoted GDAL cause may name a presigned URL: never its signature. */
  asd_scrub_urls(msg);
  CPLError(CE_Failure, CPLE_AppDefined, "%s", msg);
}

void asd_run_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit(fmt, ap);
  va_end(ap);
}

int asd_run_fail(asd_run *r, const char *fmt, ...) {
  /* The arguments were evaluated before this call, so a quoted captured
     cause is already in them; end the capture so the line is printed.
     Warnings captured so far are dropped: an exit 1 prints exactly one
     line, the one that says what to do. */
  CSLDestroy(r->report.warnings);
  r->report.warnings = NULL;
  asd_run_report_end(&r->report);
  va_list ap;
  va_start(ap, fmt);
  emit(fmt, ap);
  va_end(ap);
  return -1;
}
