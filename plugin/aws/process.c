/*
 * process.c: running a profile's credential_process.
 *
 * The AWS CLI does not hand credential_process to a shell: botocore splits
 * the line with Python's shlex.split (POSIX rules, no comments) and executes
 * the resulting argv directly.  We do the same, for the same reasons: a
 * profile line is configuration, not a script, and a value such as
 * "helper --profile 'prod'; rm -rf ~" must reach the helper as arguments
 * instead of running a second command.  asd_aws_split_command reproduces
 * shlex.split exactly (single quotes literal, double quotes with \" and \\
 * escapes, backslash escaping any character outside quotes, empty quoted
 * words kept), so a line that works with `aws` works here and one that the
 * CLI refuses ("No closing quotation") is refused with the same reason.
 *
 * The helper is started with posix_spawnp (PATH is searched, as execvp
 * does for the CLI) with:
 *   - stdin from /dev/null: a batch tool with worker threads cannot answer a
 *     prompt on its standard input, and a helper waiting for one would hang;
 *   - stdout and stderr to pipes: stdout is the JSON credentials document
 *     (at most 1 MiB), stderr's last line explains a failure;
 *   - every other descriptor closed (posix_spawn_file_actions_addclosefrom_np),
 *     so the helper inherits no socket, journal or output file of ours.
 * Both pipes are read with poll() against a deadline (60 s by default,
 * --config ASD_CREDENTIAL_PROCESS_TIMEOUT SECONDS): a helper that hangs is
 * killed and reported, instead of stalling every worker waiting for the
 * credential refresh.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_string.h>
#include <openssl/crypto.h>

#include "aws_internal.h"

extern char **environ;

#define PROCESS_MAX_STDOUT (1u << 20)
#define PROCESS_MAX_STDERR (16u << 10)

/* ------------------------------------------------------------ splitting */

char **asd_aws_split_command(const char *line, const char **error) {
  char **argv = NULL;
  asd_buf word;
  asd_buf_init(&word);
  int in_word = 0; /* a word has started (possibly empty, from "" or '') */
  const char *p = line ? line : "";
  *error = NULL;
  while (*p && !*error) {
    char c = *p;
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (in_word) {
        asd_buf_append(&word, "", 1);
        argv = CSLAddString(argv, (const char *)word.data);
        asd_buf_reset(&word);
        in_word = 0;
      }
      p++;
    } else if (c == '\'') {
      const char *close = strchr(p + 1, '\'');
      if (!close) {
        *error = "No closing quotation";
        break;
      }
      asd_buf_append(&word, p + 1, (size_t)(close - p - 1));
      in_word = 1;
      p = close + 1;
    } else if (c == '"') {
      in_word = 1;
      p++;
      for (;;) {
        if (!*p) {
          *error = "No closing quotation";
          break;
        }
        if (*p == '"') {
          p++;
          break;
        }
        /* Inside double quotes a backslash escapes only " and \ (shlex's
         * escapedquotes); before anything else it is kept. */
        if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) p++;
        asd_buf_append(&word, p, 1);
        p++;
      }
    } else if (c == '\\') {
      if (!p[1]) {
        *error = "No escaped character";
        break;
      }
      asd_buf_append(&word, p + 1, 1);
      in_word = 1;
      p += 2;
    } else {
      asd_buf_append(&word, p, 1);
      in_word = 1;
      p++;
    }
  }
  if (!*error && in_word) {
    asd_buf_append(&word, "", 1);
    argv = CSLAddString(argv, (const char *)word.data);
  }
  asd_buf_free(&word);
  if (*error) {
    CSLDestroy(argv);
    return NULL;
  }
  if (!argv) *error = "empty command";
  return argv;
}

/* ------------------------------------------------------------ running */

static double process_timeout(void) {
  const char *v = CPLGetConfigOption("ASD_CREDENTIAL_PROCESS_TIMEOUT", NULL);
  double t = v ? CPLAtof(v) : 0;
  return t > 0 ? t : 60.0;
}

/* Reads what is ready on fd into b (up to cap; the rest is drained and
 * counted in *dropped).  Returns 0 at end of file, 1 when more may come. */
static int drain(int fd, asd_buf *b, size_t cap, size_t *dropped) {
  char chunk[4096];
  ssize_t n = read(fd, chunk, sizeof chunk);
  if (n < 0) return errno == EINTR || errno == EAGAIN ? 1 : 0;
  if (n == 0) return 0;
  if (b->len + (size_t)n > cap)
    *dropped += (size_t)n;
  else
    asd_buf_append(b, chunk, (size_t)n);
  return 1;
}

/* The last non-empty line of the helper's stderr, control characters
 * replaced, for the error message. */
static void last_line(const asd_buf *b, char *out, size_t size) {
  out[0] = '\0';
  if (!b->data || !b->len) return;
  const char *s = (const char *)b->data;
  size_t end = b->len;
  while (end && (s[end - 1] == '\n' || s[end - 1] == '\r' || s[end - 1] == ' ')) end--;
  size_t start = end;
  while (start && s[start - 1] != '\n') start--;
  asd_aws_copy_line(out, size, s + start, end - start);
}

typedef struct spawned {
  pid_t pid;
  int out_fd, err_fd;
} spawned;

/* Starts argv with stdin from /dev/null, stdout and stderr to pipes and no
 * other descriptor.  Returns 0, or an errno value. */
static int spawn_helper(char **argv, spawned *sp) {
  int out[2] = {-1, -1}, errp[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
    int e = errno;
    if (out[0] >= 0) close(out[0]), close(out[1]);
    return e;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  fflush(NULL);
  int rc = posix_spawnp(&sp->pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  close(errp[1]);
  if (rc != 0) {
    close(out[0]);
    close(errp[0]);
    return rc;
  }
  sp->out_fd = out[0];
  sp->err_fd = errp[0];
  return 0;
}

/* Collects both pipes until they close or the deadline passes.  Returns 1
 * when the deadline passed (the helper is still running). */
static int collect(const spawned *sp, double timeout, asd_buf *out, asd_buf *err, size_t *dropped) {
  struct pollfd fds[2] = {{sp->out_fd, POLLIN, 0}, {sp->err_fd, POLLIN, 0}};
  int open_fds = 2;
  double deadline = asd_time_monotonic() + timeout;
  size_t err_dropped = 0;
  while (open_fds > 0) {
    double left = deadline - asd_time_monotonic();
    if (left <= 0) return 1;
    int n = poll(fds, 2, (int)(left * 1000) + 1);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < 2 && n > 0; i++) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      int more = i == 0 ? drain(fds[i].fd, out, PROCESS_MAX_STDOUT, dropped)
                        : drain(fds[i].fd, err, PROCESS_MAX_STDERR, &err_dropped);
      if (!more) {
        fds[i].fd = -1;
        open_fds--;
      }
    }
  }
  return 0;
}

int asd_aws_creds_from_process(const char *command, asd_aws_credentials *out, asd_aws_error *err) {
  asd_aws_credentials_init(out);
  char shown[120];
  snprintf(shown, sizeof(shown), "%.100s%s", command, strlen(command) > 100 ? "..." : "");
  const char *split_error = NULL;
  char **argv = asd_aws_split_command(command, &split_error);
  if (!argv) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "credential_process '%s' cannot be split into arguments: %s",
                      shown, split_error);
    return -1;
  }
  spawned sp = {-1, -1, -1};
  int e = spawn_helper(argv, &sp);
  if (e != 0) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "credential_process '%s' could not be started: %s", shown,
                      strerror(e));
    CSLDestroy(argv);
    return -1;
  }
  CSLDestroy(argv);
  asd_buf sout, serr;
  asd_buf_init(&sout);
  asd_buf_init(&serr);
  size_t dropped = 0;
  double timeout = process_timeout();
  int timed_out = collect(&sp, timeout, &sout, &serr, &dropped);
  if (timed_out) kill(sp.pid, SIGKILL);
  close(sp.out_fd);
  close(sp.err_fd);
  int st = 0;
  while (waitpid(sp.pid, &st, 0) < 0 && errno == EINTR) {
  }
  char why[200];
  last_line(&serr, why, sizeof why);
  int rc = -1;
  if (timed_out) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                      "credential_process '%s' timed out after %g s and was killed (raise it with --config "
                      "ASD_CREDENTIAL_PROCESS_TIMEOUT SECONDS)",
                      shown, timeout);
  } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "credential_process '%s' failed (exit status %d)%s%s", shown,
                      WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), why[0] ? ": " : "", why);
  } else if (dropped) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "credential_process '%s' printed more than 1 MiB", shown);
  } else if (asd_aws_parse_credentials_json(sout.data ? (const char *)sout.data : "", sout.len,
                                            "credential_process", out, err) == 0) {
    rc = 1;
  } else {
    char m[sizeof(err->message)];
    snprintf(m, sizeof(m), "%s", err->message);
    asd_aws_error_set(err, err->kind, "%s (command '%s')", m, shown);
  }
  if (sout.data) OPENSSL_cleanse(sout.data, sout.len);
  asd_buf_free(&sout);
  asd_buf_free(&serr);
  return rc;
}
