/*
 * s3_multipart.c: multipart uploads (CreateMultipartUpload, UploadPart,
 * CompleteMultipartUpload, AbortMultipartUpload, ListParts,
 * ListMultipartUploads) on disk, beside the object store.
 *
 * Why multipart matters here.  The AWS CLI switches to multipart above
 * 8 MB, boto3's upload_file above its threshold, and GDAL's /vsis3/ writer
 * whenever a file outgrows one chunk; without these operations none of them
 * can put a large file on the local endpoint.
 *
 * Layout.  <data-dir>/.uploads/ (".uploads" is not a valid bucket name, so
 * the store never mistakes it for a bucket) holds one folder per upload,
 * named by its id: 32 random lower-case hex digits.  Ids coming from clients
 * are checked against that shape before they are used in a path, so no id
 * can reach outside the folder, and keys never become paths at all (they
 * live, hex-encoded, in the upload's description file "upload.json").  A
 * part is the file "part-NNNNN", written by a store part writer: streamed to
 * a temporary file and renamed into place, so a part is either absent or
 * whole, and a re-sent part replaces the old one atomically.  Memory use does
 * not depend on part or object sizes.
 *
 * State changes are renames of the upload folder under one lock:
 *   create:   ".tmp-<id>" (description written inside) -> "<id>"
 *   abort:    "<id>" -> ".dead-<id>", then deleted
 *   complete: "<id>" -> ".completing-<id>", then validated and assembled;
 *             renamed back when the part list is refused or the write
 *             fails (on S3 a refused completion leaves the upload usable),
 *             deleted once the object is committed.
 * A part still streaming when its upload is aborted or completed fails at its
 * final rename (the folder has moved) and answers NoSuchUpload.  Opening the
 * store after a crash deletes ".tmp-" and ".dead-" folders and temporary part
 * files, and puts ".completing-" folders back: at worst an upload whose
 * object was already committed reappears, and aborting it is harmless.
 *
 * Validation follows S3: the part list must be strictly ascending
 * (InvalidPartOrder), every part must exist with the ETag given
 * (InvalidPart), and every part but the last must hold at least 5 MiB
 * (EntityTooSmall).  The object's ETag is S3's multipart form, the MD5 of
 * the concatenated binary MD5s of the parts, then "-" and the part count;
 * clients such as the AWS CLI recognise it and do not compare it with an
 * MD5 of the content.
 */
#include "s3_multipart.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "cpl_error.h"
#include "cpl_string.h"

#include "asyncdetect/asd_common.h"

#define UPLOADS_DIR ".uploads"
#define DESC_FILE "upload.json"
#define DESC_MAX 16384

struct ep_mpu {
  ep_store *st;
  char *dir; /* <root>/.uploads */
  pthread_mutex_t lock;
};

/* What upload.json holds. */
typedef struct upload_desc {
  char *bucket;
  char *key;
  char *content_type; /* NULL if none */
  char *user_meta;    /* NULL if none */
  double initiated;
} upload_desc;

static void desc_clear(upload_desc *d) {
  free(d->bucket);
  free(d->key);
  free(d->content_type);
  free(d->user_meta);
  memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------- helpers */

int ep_mpu_id_valid(const char *s) {
  if (!s || strlen(s) != 32) return 0;
  for (int i = 0; i < 32; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return 1;
}

static char *join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", a, b);
  return p;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes a hex string into a NUL-terminated malloc'd string; NULL if it is
 * not hex or decodes to a NUL byte. */
static char *hex_decode_str(const char *hex) {
  size_t n = strlen(hex);
  if (n % 2) return NULL;
  char *out = malloc(n / 2 + 1);
  if (!out) return NULL;
  for (size_t i = 0; i < n; i += 2) {
    int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
      free(out);
      return NULL;
    }
    out[i / 2] = (char)(hi * 16 + lo);
  }
  out[n / 2] = '\0';
  return out;
}

/* Deletes the files of a folder (uploads hold no sub-folders) and the folder. */
static void remove_folder(const char *path) {
  DIR *d = opendir(path);
  if (d) {
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
      char *p = join(path, de->d_name);
      if (p) unlink(p);
      free(p);
    }
    closedir(d);
  }
  rmdir(path);
}

static int write_desc(const char *path, const char *bucket, const char *key, const char *content_type,
                      const char *user_meta, double initiated) {
  json_object *o = json_object_new_object();
  char *hex = malloc(strlen(key) * 2 + 1);
  if (!o || !hex) {
    json_object_put(o);
    free(hex);
    return -1;
  }
  asd_hex_encode((const unsigned char *)key, strlen(key), hex);
  json_object_object_add(o, "bucket", json_object_new_string(bucket));
  json_object_object_add(o, "key_hex", json_object_new_string(hex));
  if (content_type) json_object_object_add(o, "content_type", json_object_new_string(content_type));
  if (user_meta && *user_meta) {
    /* Hex like the key: metadata values may hold any byte. */
    char *mh = malloc(strlen(user_meta) * 2 + 1);
    if (mh) {
      asd_hex_encode((const unsigned char *)user_meta, strlen(user_meta), mh);
      json_object_object_add(o, "user_meta_hex", json_object_new_string(mh));
      free(mh);
    }
  }
  json_object_object_add(o, "initiated", json_object_new_double(initiated));
  free(hex);
  const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  size_t len = strlen(text);
  int ok = fd >= 0 && write(fd, text, len) == (ssize_t)len;
  if (fd >= 0 && close(fd) != 0) ok = 0;
  json_object_put(o);
  return ok ? 0 : -1;
}

/* Reads <upload folder>/upload.json.  0 or -1 (missing or not ours). */
static int read_desc(const char *folder, upload_desc *d) {
  memset(d, 0, sizeof *d);
  char *p = join(folder, DESC_FILE);
  int fd = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
  free(p);
  if (fd < 0) return -1;
  char *buf = malloc(DESC_MAX + 1);
  ssize_t n = buf ? read(fd, buf, DESC_MAX) : -1;
  close(fd);
  if (n <= 0) {
    free(buf);
    return -1;
  }
  buf[n] = '\0';
  json_object *o = json_tokener_parse(buf);
  free(buf);
  json_object *b = NULL, *k = NULL, *ct = NULL, *t = NULL, *um = NULL;
  int ok = o && json_object_object_get_ex(o, "bucket", &b) && json_object_object_get_ex(o, "key_hex", &k);
  if (ok) {
    d->bucket = strdup(json_object_get_string(b));
    d->key = hex_decode_str(json_object_get_string(k));
    if (json_object_object_get_ex(o, "content_type", &ct)) d->content_type = strdup(json_object_get_string(ct));
    if (json_object_object_get_ex(o, "initiated", &t)) d->initiated = json_object_get_double(t);
    if (json_object_object_get_ex(o, "user_meta_hex", &um)) d->user_meta = hex_decode_str(json_object_get_string(um));
    ok = d->bucket && d->key;
  }
  json_object_put(o);
  if (!ok) desc_clear(d);
  return ok ? 0 : -1;
}

/* The folder of an upload of bucket/key, or NULL (ASD_STORE_NO_UPLOAD) when
 * the id is malformed, unknown, or belongs to another bucket or key. */
static char *upload_folder(ep_mpu *m, const char *bucket, const char *key, const char *id, upload_desc *out) {
  if (!ep_mpu_id_valid(id)) return NULL;
  char *folder = join(m->dir, id);
  if (!folder) return NULL;
  upload_desc d;
  if (read_desc(folder, &d) != 0 || strcmp(d.bucket, bucket) != 0 || strcmp(d.key, key) != 0) {
    if (d.bucket) desc_clear(&d);
    free(folder);
    return NULL;
  }
  if (out)
    *out = d;
  else
    desc_clear(&d);
  return folder;
}

/* ----------------------------------------------------------- open/close */

ep_mpu *ep_mpu_open(ep_store *st, char **err) {
  if (err) *err = NULL;
  ep_mpu *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->st = st;
  m->dir = join(ep_store_root(st), UPLOADS_DIR);
  pthread_mutex_init(&m->lock, NULL);
  if (!m->dir || (mkdir(m->dir, 0700) != 0 && errno != EEXIST)) {
    if (err) *err = strdup(CPLSPrintf("store: cannot create %s: %s", m->dir ? m->dir : UPLOADS_DIR, strerror(errno)));
    ep_mpu_close(m);
    return NULL;
  }
  /* Repair what a crash left: see the comment at the top. */
  DIR *d = opendir(m->dir);
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL) {
    const char *n = de->d_name;
    if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0) continue;
    char *p = join(m->dir, n);
    if (!p) continue;
    if (strncmp(n, ".tmp-", 5) == 0 || strncmp(n, ".dead-", 6) == 0) {
      remove_folder(p);
    } else if (strncmp(n, ".completing-", 12) == 0 && ep_mpu_id_valid(n + 12)) {
      char *back = join(m->dir, n + 12);
      if (back && rename(p, back) != 0) remove_folder(p);
      free(back);
    } else if (ep_mpu_id_valid(n)) {
      DIR *pd = opendir(p);
      struct dirent *pe;
      while (pd && (pe = readdir(pd)) != NULL) {
        if (strncmp(pe->d_name, ".tmp-", 5) != 0) continue;
        char *t = join(p, pe->d_name);
        if (t) unlink(t);
        free(t);
      }
      if (pd) closedir(pd);
    }
    free(p);
  }
  if (d) closedir(d);
  return m;
}

void ep_mpu_close(ep_mpu *m) {
  if (!m) return;
  pthread_mutex_destroy(&m->lock);
  free(m->dir);
  free(m);
}

/* ------------------------------------------------------------ operations */

ep_store_status ep_mpu_create(ep_mpu *m, const char *bucket, const char *key, const char *content_type,
                                const char *user_meta, char upload_id[33]) {
  if (!ep_store_key_valid(key)) return ASD_STORE_BAD_KEY;
  ep_store_status hb = ep_store_head_bucket(m->st, bucket);
  if (hb != ASD_STORE_OK) return hb;
  snprintf(upload_id, 33, "%016llx%016llx", (unsigned long long)asd_random_u64(),
           (unsigned long long)asd_random_u64());
  char tmpname[48];
  snprintf(tmpname, sizeof tmpname, ".tmp-%s", upload_id);
  char *tmp = join(m->dir, tmpname), *fin = join(m->dir, upload_id);
  char *desc = tmp ? join(tmp, DESC_FILE) : NULL;
  ep_store_status rc = ASD_STORE_OK;
  if (!tmp || !fin || !desc || mkdir(tmp, 0700) != 0 ||
      write_desc(desc, bucket, key, content_type, user_meta, asd_time_wall()) != 0) {
    CPLError(CE_Failure, CPLE_FileIO, "store: cannot create a multipart upload folder: %s", strerror(errno));
    rc = ASD_STORE_IO;
  } else {
    pthread_mutex_lock(&m->lock);
    if (rename(tmp, fin) != 0) rc = ASD_STORE_IO;
    pthread_mutex_unlock(&m->lock);
  }
  if (rc != ASD_STORE_OK && tmp) remove_folder(tmp);
  free(desc);
  free(tmp);
  free(fin);
  return rc;
}

ep_store_status ep_mpu_check(ep_mpu *m, const char *bucket, const char *key, const char *upload_id) {
  char *f = upload_folder(m, bucket, key, upload_id, NULL);
  free(f);
  return f ? ASD_STORE_OK : ASD_STORE_NO_UPLOAD;
}

ep_store_status ep_mpu_part_writer_begin(ep_mpu *m, const char *bucket, const char *key,
                                           const char *upload_id, int part_number, ep_store_writer **w) {
  *w = NULL;
  if (part_number < 1 || part_number > ASD_MPU_MAX_PARTS) return ASD_STORE_IO;
  char *f = upload_folder(m, bucket, key, upload_id, NULL);
  if (!f) return ASD_STORE_NO_UPLOAD;
  char name[16];
  snprintf(name, sizeof name, "part-%05d", part_number);
  ep_store_status rc = ep_store_part_writer_begin(m->st, f, name, w);
  free(f);
  return rc;
}

ep_store_status ep_mpu_abort(ep_mpu *m, const char *bucket, const char *key, const char *upload_id) {
  char *f = upload_folder(m, bucket, key, upload_id, NULL);
  if (!f) return ASD_STORE_NO_UPLOAD;
  char dead_name[48];
  snprintf(dead_name, sizeof dead_name, ".dead-%s", upload_id);
  char *dead = join(m->dir, dead_name);
  ep_store_status rc = ASD_STORE_OK;
  pthread_mutex_lock(&m->lock);
  if (!dead || rename(f, dead) != 0) rc = errno == ENOENT ? ASD_STORE_NO_UPLOAD : ASD_STORE_IO;
  pthread_mutex_unlock(&m->lock);
  if (rc == ASD_STORE_OK) remove_folder(dead);
  free(dead);
  free(f);
  return rc;
}

static int cmp_part(const void *a, const void *b) {
  const ep_mpu_part *x = a, *y = b;
  return (x->number > y->number) - (x->number < y->number);
}

/* Lists the part files of an upload folder. */
static ep_store_status scan_parts(const char *folder, ep_mpu_part **parts, size_t *n) {
  *parts = NULL;
  *n = 0;
  DIR *d = opendir(folder);
  if (!d) return errno == ENOENT ? ASD_STORE_NO_UPLOAD : ASD_STORE_IO;
  size_t cap = 0;
  ep_store_status rc = ASD_STORE_OK;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    const char *nm = de->d_name;
    if (strncmp(nm, "part-", 5) != 0 || strlen(nm) != 10) continue;
    int num = atoi(nm + 5);
    if (num < 1 || num > ASD_MPU_MAX_PARTS) continue;
    char *p = join(folder, nm);
    ep_mpu_part part;
    memset(&part, 0, sizeof part);
    part.number = num;
    int ok = p && ep_store_read_part_meta(p, &part.meta, NULL) == 0;
    free(p);
    if (!ok) continue; /* replaced or removed while listing */
    if (*n == cap) {
      size_t nc = cap ? cap * 2 : 16;
      ep_mpu_part *np = realloc(*parts, nc * sizeof *np);
      if (!np) {
        rc = ASD_STORE_IO;
        break;
      }
      *parts = np;
      cap = nc;
    }
    (*parts)[(*n)++] = part;
  }
  closedir(d);
  if (rc != ASD_STORE_OK) {
    free(*parts);
    *parts = NULL;
    *n = 0;
    return rc;
  }
  if (*n) qsort(*parts, *n, sizeof **parts, cmp_part);
  return ASD_STORE_OK;
}

ep_store_status ep_mpu_list_parts(ep_mpu *m, const char *bucket, const char *key, const char *upload_id,
                                    ep_mpu_part **parts, size_t *n) {
  *parts = NULL;
  *n = 0;
  char *f = upload_folder(m, bucket, key, upload_id, NULL);
  if (!f) return ASD_STORE_NO_UPLOAD;
  ep_store_status rc = scan_parts(f, parts, n);
  free(f);
  return rc;
}

static int cmp_upload(const void *a, const void *b) {
  const ep_mpu_upload *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  if (c) return c;
  if (x->initiated != y->initiated) return x->initiated < y->initiated ? -1 : 1;
  return strcmp(x->upload_id, y->upload_id);
}

ep_store_status ep_mpu_list_uploads(ep_mpu *m, const char *bucket, const char *prefix, ep_mpu_upload **ups,
                                      size_t *n) {
  *ups = NULL;
  *n = 0;
  ep_store_status hb = ep_store_head_bucket(m->st, bucket);
  if (hb != ASD_STORE_OK) return hb;
  DIR *d = opendir(m->dir);
  if (!d) return ASD_STORE_IO;
  size_t cap = 0, plen = prefix ? strlen(prefix) : 0;
  ep_store_status rc = ASD_STORE_OK;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (!ep_mpu_id_valid(de->d_name)) continue;
    char *folder = join(m->dir, de->d_name);
    upload_desc desc;
    int ok = folder && read_desc(folder, &desc) == 0;
    free(folder);
    if (!ok) continue;
    if (strcmp(desc.bucket, bucket) != 0 || (plen && strncmp(desc.key, prefix, plen) != 0)) {
      desc_clear(&desc);
      continue;
    }
    if (*n == cap) {
      size_t nc = cap ? cap * 2 : 16;
      ep_mpu_upload *nu = realloc(*ups, nc * sizeof *nu);
      if (!nu) {
        desc_clear(&desc);
        rc = ASD_STORE_IO;
        break;
      }
      *ups = nu;
      cap = nc;
    }
    ep_mpu_upload *u = &(*ups)[(*n)++];
    u->key = desc.key;
    desc.key = NULL;
    memcpy(u->upload_id, de->d_name, 32); /* ep_mpu_id_valid: exactly 32 characters */
    u->upload_id[32] = '\0';
    u->initiated = desc.initiated;
    desc_clear(&desc);
  }
  closedir(d);
  if (rc != ASD_STORE_OK) {
    ep_mpu_uploads_free(*ups, *n);
    *ups = NULL;
    *n = 0;
    return rc;
  }
  if (*n) qsort(*ups, *n, sizeof **ups, cmp_upload);
  return ASD_STORE_OK;
}

void ep_mpu_uploads_free(ep_mpu_upload *ups, size_t n) {
  for (size_t i = 0; ups && i < n; i++) free(ups[i].key);
  free(ups);
}

/* ------------------------------------------------------------ completion */

/* Normalises an ETag to 32 lower-case hex digits (quotes dropped).  0 or -1. */
static int etag_hex(const char *etag, char out[33]) {
  if (!etag) return -1;
  size_t n = strlen(etag);
  const char *p = etag;
  if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
    p++;
    n -= 2;
  } else if (n >= 12 && strncmp(p, "&quot;", 6) == 0 && strcmp(p + n - 6, "&quot;") == 0) {
    p += 6;
    n -= 12;
  }
  if (n != 32) return -1;
  for (size_t i = 0; i < 32; i++) {
    int v = hexval(p[i]);
    if (v < 0) return -1;
    out[i] = "0123456789abcdef"[v];
  }
  out[32] = '\0';
  return 0;
}

ep_mpu_verdict ep_mpu_validate(const ep_mpu_request_part *req, size_t n, const ep_mpu_part *have,
                                 size_t n_have, uint64_t min_part_size, char *detail, size_t detail_len) {
  if (detail_len) detail[0] = '\0';
  if (n == 0) {
    snprintf(detail, detail_len, "The XML you provided was not well-formed or did not validate against our "
                                 "published schema: no parts");
    return ASD_MPU_MALFORMED;
  }
  for (size_t i = 0; i < n; i++) {
    if (req[i].number < 1 || req[i].number > ASD_MPU_MAX_PARTS) {
      snprintf(detail, detail_len, "Part number must be an integer between 1 and 10000, inclusive");
      return ASD_MPU_MALFORMED;
    }
    if (i > 0 && req[i].number <= req[i - 1].number) {
      snprintf(detail, detail_len, "The list of parts was not in ascending order. Parts must be ordered by "
                                   "part number (part %d follows part %d).", req[i].number, req[i - 1].number);
      return ASD_MPU_INVALID_PART_ORDER;
    }
  }
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    while (j < n_have && have[j].number < req[i].number) j++;
    char want[33], got[33];
    if (j >= n_have || have[j].number != req[i].number || etag_hex(req[i].etag, want) != 0 ||
        etag_hex(have[j].meta.etag, got) != 0 || strcmp(want, got) != 0) {
      snprintf(detail, detail_len, "One or more of the specified parts could not be found. The part may not have "
                                   "been uploaded, or the specified entity tag may not match the part's entity "
                                   "tag (part %d).", req[i].number);
      return ASD_MPU_INVALID_PART;
    }
    if (i + 1 < n && have[j].meta.size < min_part_size) {
      snprintf(detail, detail_len, "Your proposed upload is smaller than the minimum allowed size (part %d has "
                                   "%llu bytes; every part but the last needs %llu).", req[i].number,
               (unsigned long long)have[j].meta.size, (unsigned long long)min_part_size);
      return ASD_MPU_ENTITY_TOO_SMALL;
    }
  }
  return ASD_MPU_OK;
}

int ep_mpu_etag(const char *const *part_etags, size_t n, char out[48]) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1) {
    EVP_MD_CTX_free(ctx);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    char hex[33];
    unsigned char bin[16];
    if (etag_hex(part_etags[i], hex) != 0) {
      EVP_MD_CTX_free(ctx);
      return -1;
    }
    for (int k = 0; k < 16; k++) bin[k] = (unsigned char)(hexval(hex[2 * k]) * 16 + hexval(hex[2 * k + 1]));
    EVP_DigestUpdate(ctx, bin, 16);
  }
  unsigned char d[16];
  unsigned int dl = 0;
  EVP_DigestFinal_ex(ctx, d, &dl);
  EVP_MD_CTX_free(ctx);
  char hex[33];
  asd_hex_encode(d, 16, hex);
  snprintf(out, 48, "\"%s-%zu\"", hex, n);
  return 0;
}

/* Copies the listed parts into a new object and commits it. */
static ep_store_status assemble(ep_mpu *m, const char *folder, const upload_desc *desc,
                                 const ep_mpu_request_part *req, size_t n, ep_store_meta *meta) {
  ep_store_writer *w = NULL;
  ep_store_status rc = ep_store_writer_begin(m->st, desc->bucket, desc->key, &w);
  if (rc != ASD_STORE_OK) return rc;
  const char **etags = calloc(n, sizeof *etags);
  ep_store_meta *pm = calloc(n, sizeof *pm);
  if (!etags || !pm) rc = ASD_STORE_IO;
  for (size_t i = 0; i < n && rc == ASD_STORE_OK; i++) {
    char name[16];
    snprintf(name, sizeof name, "part-%05d", req[i].number);
    char *p = join(folder, name);
    uint64_t off = 0;
    int fd = -1;
    /* The folder is ours alone now (renamed), so the part validated is the
     * part copied; the header is read again for its offset and size. */
    if (!p || ep_store_read_part_meta(p, &pm[i], &off) != 0 || (fd = open(p, O_RDONLY | O_CLOEXEC)) < 0 ||
        ep_store_writer_append_fd(w, fd, off, pm[i].size, 0) != 0)
      rc = ASD_STORE_IO;
    if (fd >= 0) close(fd);
    free(p);
    etags[i] = pm[i].etag;
  }
  char etag[48];
  if (rc == ASD_STORE_OK && ep_mpu_etag(etags, n, etag) != 0) rc = ASD_STORE_IO;
  free(etags);
  free(pm);
  if (rc != ASD_STORE_OK) {
    ep_store_writer_abort(w);
    return rc;
  }
  ep_store_writer_set_etag(w, etag);
  ep_store_writer_set_user_meta(w, desc->user_meta);
  return ep_store_writer_commit(w, desc->content_type, meta);
}

ep_store_status ep_mpu_complete(ep_mpu *m, const char *bucket, const char *key, const char *upload_id,
                                  const ep_mpu_request_part *parts, size_t n, ep_mpu_verdict *verdict,
                                  char *detail, size_t detail_len, ep_store_meta *meta) {
  *verdict = ASD_MPU_OK;
  if (detail_len) detail[0] = '\0';
  upload_desc desc;
  char *folder = upload_folder(m, bucket, key, upload_id, &desc);
  if (!folder) return ASD_STORE_NO_UPLOAD;
  char claimed_name[64];
  snprintf(claimed_name, sizeof claimed_name, ".completing-%s", upload_id);
  char *claimed = join(m->dir, claimed_name);
  ep_store_status rc = ASD_STORE_OK;
  /* Claim the upload: concurrent parts, aborts and completions now fail. */
  pthread_mutex_lock(&m->lock);
  if (!claimed || rename(folder, claimed) != 0) rc = errno == ENOENT ? ASD_STORE_NO_UPLOAD : ASD_STORE_IO;
  pthread_mutex_unlock(&m->lock);
  if (rc == ASD_STORE_OK) {
    ep_mpu_part *have = NULL;
    size_t n_have = 0;
    rc = scan_parts(claimed, &have, &n_have);
    if (rc == ASD_STORE_OK)
      *verdict = ep_mpu_validate(parts, n, have, n_have, ASD_MPU_MIN_PART_SIZE, detail, detail_len);
    free(have);
    if (rc == ASD_STORE_OK && *verdict == ASD_MPU_OK) rc = assemble(m, claimed, &desc, parts, n, meta);
    if (rc == ASD_STORE_OK && *verdict == ASD_MPU_OK) {
      remove_folder(claimed);
    } else {
      /* Refused or failed: the upload stays, as on S3. */
      pthread_mutex_lock(&m->lock);
      if (rename(claimed, folder) != 0)
        CPLError(CE_Failure, CPLE_FileIO, "store: cannot restore multipart upload %s: %s", upload_id,
                 strerror(errno));
      pthread_mutex_unlock(&m->lock);
    }
  }
  desc_clear(&desc);
  free(claimed);
  free(folder);
  return rc;
}
