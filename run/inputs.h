/*
 * inputs.h: what a run is given to work on, before any dataset is opened:
 * the list of source images (positional arguments, -input_file_list), the
 * name of a source as it may be written anywhere (asd_source_label), and
 * the part of the work a -shard K/N run takes.  Internal (not installed);
 * pure functions, so the unit tests check them without rasters or network.
 */
#ifndef ASD_RUN_INPUTS_H
#define ASD_RUN_INPUTS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The name of a source image as the run writes it into the journal, the
 * metrics, the features (source_image) and its messages: the name given,
 * without what may carry a secret.  A presigned /vsicurl/ URL holds its
 * signature (X-Amz-Signature, X-Amz-Credential, a session token) in its query
 * string, and a URL may hold a password in its userinfo (user:pw@host); both
 * go.  GDAL's /vsicurl?url=...&... form becomes /vsicurl/ plus the decoded
 * URL, without its own query string either.  A local path is returned as
 * given ('?' is a legal character in a file name there).  CPLFree.
 */
char *asd_source_label(const char *name);

/*
 * Removes, in place, the query string of every URL ("scheme://...") in a
 * message: GDAL's own messages about a /vsicurl/ source quote its URL, and
 * such a message becomes a tile's failure reason (journal, tile layer,
 * metrics) or a line on the terminal.  A URL ends at a blank or a quote.
 */
void asd_scrub_urls(char *text);

/*
 * Reads an -input_file_list file: one source per line, as gdalbuildvrt and
 * gdal_merge take them.  Surrounding blanks and a CR are trimmed, empty
 * lines and lines starting with '#' are skipped.  Returns a CSL list (empty
 * list = NULL with *err empty), or NULL with one line in err when the file
 * cannot be read.
 */
char **asd_read_input_file_list(const char *path, char *err, size_t errlen);

/*
 * -shard K/N: the K-th (0-based, so that AWS_BATCH_JOB_ARRAY_INDEX and a
 * Kubernetes JOB_COMPLETION_INDEX can be passed as they are) of N parts.
 * Returns 0, or -1 with one line in err.
 */
int asd_shard_parse(const char *spec, int *k, int *n, char *err, size_t errlen);

/*
 * The part [*first, *end) of count items that shard k of n takes: contiguous
 * blocks of nearly equal size (floor(k * count / n) .. floor((k + 1) * count
 * / n)), so that the parts are disjoint, cover everything, depend on nothing
 * but count, k and n, and keep neighbouring tiles (or consecutive images) in
 * the same shard.  A run over one image splits its tiles this way; a run
 * over a list splits the list.
 */
void asd_shard_range(int count, int k, int n, int *first, int *end);

#ifdef __cplusplus
}
#endif

#endif /* ASD_RUN_INPUTS_H */
