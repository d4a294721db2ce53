/*
 * s3_store.c: buckets and objects on disk, with an in-memory index.
 *
 * Layout.  The data directory holds one folder per bucket (bucket names are
 * restricted by S3's naming rules to [a-z0-9.-] without "..", so a bucket name
 * is always a safe single path component).  Inside a bucket folder, each
 * object is one file named after the hex SHA-256 of its key plus ".obj": the
 * key itself never becomes a path, so no key, however hostile ("../../etc"),
 * can make the server write outside the data directory, and S3's flat key
 * space (where "a" and "a/b" may both exist) needs no directory tricks.
 *
 * File format.  A fixed 8 KiB header holds the metadata as text lines
 * ("ASDOBJ1", size, etag, mtime, content type, key, and the user metadata
 * when there is some; the last three percent-encoded where they contain
 * control bytes or '%'), padded with NULs,
 * followed by the object's bytes.  The fixed size lets a streamed upload
 * write its body first and its header (which needs the final MD5) last, and
 * lets GET hand libmicrohttpd a file descriptor plus an offset.
 *
 * Permissions.  The data directory is 0700 (tightened when it exists), and
 * bucket folders, objects and parts are created 0700/0600: objects may be
 * anyone's imagery, and other users of the machine have no business there.
 *
 * Atomicity.  Writes go to ".tmp-<uuid>" in the bucket folder and are renamed
 * over the final name under the index lock, so readers see the old object or
 * the new one, never a torn one, and the index always agrees with the files.
 * A reader that has opened the file keeps its bytes even if the object is
 * replaced or deleted right after.  Temporary files left by a crash are
 * removed when the store is opened again.
 *
 * Multipart parts use the same file format and the same write-then-rename
 * discipline, but live in an upload's folder under <data-dir>/.uploads/ (see
 * s3_multipart.c) and never enter the index: ep_store_part_writer_begin
 * gives a writer whose commit renames into that folder, and
 * ep_store_writer_append_fd lets completion and copies feed a writer from
 * another file without loading it.  A multipart object's ETag is not the MD5
 * of its bytes, so the writer can be given one (ep_store_writer_set_etag).
 *
 * User metadata (x-amz-meta-*) is rare in this project's traffic, so an index
 * entry holds only a pointer to it, NULL for most objects: HEAD stays a
 * memory lookup without making every entry 2 KiB larger.
 *
 * Index.  Per bucket, a sorted array of entries (binary search for lookups,
 * which makes HEAD a memory lookup, and ordered scans for listings).  One
 * reader-writer lock guards the whole index; file I/O of the object bytes
 * happens outside it.
 */
#include "s3_store.h"

#include "asyncdetect/asd_checksum.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cpl_conv.h"
#include "cpl_error.h"
#include "cpl_string.h"

#include "asyncdetect/asd_common.h"

#define HDR_SIZE 8192
#define HDR_MAGIC "ASDOBJ1\n"
#define KEY_MAX 1024

typedef struct obj_entry {
  char *key;
  ep_store_meta meta;
  char *user_meta; /* x-amz-meta-* block, NULL when none (most objects) */
} obj_entry;

typedef struct bucket {
  char *name;
  obj_entry **objs; /* sorted by key (strcmp, i.e. byte order as S3) */
  size_t n, cap;
  uint64_t bytes;
} bucket;

struct ep_store {
  char *root;
  pthread_rwlock_t lock;
  bucket **buckets; /* sorted by name */
  size_t n, cap;
};

struct ep_store_writer {
  ep_store *st;
  char *bucket;
  char *key;
  char *tmp_path;
  int fd;
  uint64_t size;
  EVP_MD_CTX *md5;
  EVP_MD_CTX *sha;
  int failed;
  char *final_path;  /* part writers: where commit renames the file (no index entry) */
  char etag[48];     /* "" = the MD5 of the bytes; else given by ep_store_writer_set_etag */
  char *user_meta;   /* ep_store_writer_set_user_meta; NULL = none */
  unsigned want;     /* ASD_STORE_CK_* the client declared: computed as the bytes stream */
  uint32_t crc32c, crc32;
  EVP_MD_CTX *sha1;
};

const char *ep_store_status_text(ep_store_status st) {
  switch (st) {
    case ASD_STORE_OK: return "ok";
    case ASD_STORE_NO_BUCKET: return "the specified bucket does not exist";
    case ASD_STORE_NO_KEY: return "the specified key does not exist";
    case ASD_STORE_BAD_BUCKET: return "the specified bucket is not valid";
    case ASD_STORE_BAD_KEY: return "the object key is not valid (empty, over 1024 bytes, or with a '..' segment)";
    case ASD_STORE_EXISTS: return "the bucket already exists";
    case ASD_STORE_NOT_EMPTY: return "the bucket is not empty";
    case ASD_STORE_TOO_LARGE: return "the object is larger than allowed";
    case ASD_STORE_NO_UPLOAD: return "the specified multipart upload does not exist";
    case ASD_STORE_META_TOO_LARGE: return "the metadata does not fit in the object header";
    case ASD_STORE_IO: return "storage input/output error";
  }
  return "unknown store status";
}

/* ------------------------------------------------------------------ names */

int ep_store_bucket_name_valid(const char *name) {
  if (!name) return 0;
  size_t n = strlen(name);
  if (n < 3 || n > 63) return 0;
  int all_digits_dots = 1;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && c != '.' && c != '-') return 0;
    if ((i == 0 || i == n - 1) && !alnum) return 0;
    if (c == '.' && (name[i + 1] == '.' || name[i + 1] == '-' || (i > 0 && name[i - 1] == '-'))) return 0;
    if (!(c == '.' || (c >= '0' && c <= '9'))) all_digits_dots = 0;
  }
  if (all_digits_dots) {
    /* Looks like an IPv4 address, which S3 forbids. */
    int dots = 0;
    for (size_t i = 0; i < n; i++) dots += name[i] == '.';
    if (dots == 3) return 0;
  }
  return 1;
}

int ep_store_key_valid(const char *key) {
  if (!key) return 0;
  size_t n = strlen(key);
  if (n == 0 || n > KEY_MAX) return 0;
  const char *seg = key;
  for (;;) {
    const char *slash = strchr(seg, '/');
    size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
    if (len == 2 && seg[0] == '.' && seg[1] == '.') return 0;
    if (!slash) break;
    seg = slash + 1;
  }
  return 1;
}

/* --------------------------------------------------------------- helpers */

static char *path_join3(const char *a, const char *b, const char *c) {
  size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 3;
  char *p = malloc(n);
  if (!p) return NULL;
  if (c)
    snprintf(p, n, "%s/%s/%s", a, b, c);
  else
    snprintf(p, n, "%s/%s", a, b);
  return p;
}

static void key_file_name(const char *key, char out[70]) {
  char hex[65];
  asd_sha256_hex(key, strlen(key), hex);
  snprintf(out, 70, "%s.obj", hex);
}

/* Percent-encodes control bytes, '%' and DEL so a value fits on one line. */
static void append_line_value(asd_buf *b, const char *v) {
  for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
    if (*p < 0x20 || *p == '%' || *p == 0x7f)
      asd_buf_appendf(b, "%%%02X", *p);
    else
      asd_buf_append(b, p, 1);
  }
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static char *decode_line_value(const char *v, size_t len) {
  char *out = malloc(len + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (v[i] == '%' && i + 2 < len && hexval(v[i + 1]) >= 0 && hexval(v[i + 2]) >= 0) {
      out[o++] = (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2]));
      i += 2;
    } else {
      out[o++] = v[i];
    }
  }
  out[o] = '\0';
  return out;
}

static int build_header(const char *key, const ep_store_meta *m, const char *user_meta,
                        unsigned char hdr[HDR_SIZE]) {
  asd_buf b;
  asd_buf_init(&b);
  asd_buf_append_str(&b, HDR_MAGIC);
  asd_buf_appendf(&b, "size=%llu\netag=%s\nmtime=%.3f\nctype=", (unsigned long long)m->size, m->etag,
                  m->mtime);
  append_line_value(&b, m->content_type);
  asd_buf_append_str(&b, "\nkey=");
  append_line_value(&b, key);
  asd_buf_append_str(&b, "\n");
  if (user_meta && *user_meta) {
    asd_buf_append_str(&b, "umeta=");
    append_line_value(&b, user_meta);
    asd_buf_append_str(&b, "\n");
  }
  int ok = b.data && b.len < HDR_SIZE;
  memset(hdr, 0, HDR_SIZE);
  if (ok) memcpy(hdr, b.data, b.len);
  asd_buf_free(&b);
  return ok ? 0 : -1;
}

/* Parses a header; returns the malloc'd key or NULL if it is not one of ours.
 * *user_meta (when not NULL) receives the malloc'd user metadata or NULL. */
static char *parse_header(const unsigned char *hdr, size_t n, ep_store_meta *m, char **user_meta) {
  if (user_meta) *user_meta = NULL;
  if (n < HDR_SIZE || memcmp(hdr, HDR_MAGIC, strlen(HDR_MAGIC)) != 0) return NULL;
  memset(m, 0, sizeof *m);
  char *key = NULL;
  const char *p = (const char *)hdr + strlen(HDR_MAGIC);
  const char *end = (const char *)memchr(hdr, '\0', HDR_SIZE);
  if (!end) return NULL;
  int have_size = 0, have_etag = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) break;
    size_t len = (size_t)(nl - p);
    if (len > 5 && strncmp(p, "size=", 5) == 0) {
      m->size = strtoull(p + 5, NULL, 10);
      have_size = 1;
    } else if (len > 5 && strncmp(p, "etag=", 5) == 0 && len - 5 < sizeof m->etag) {
      memcpy(m->etag, p + 5, len - 5);
      m->etag[len - 5] = '\0';
      have_etag = 1;
    } else if (len > 6 && strncmp(p, "mtime=", 6) == 0) {
      m->mtime = CPLAtof(CPLSPrintf("%.*s", (int)(len - 6), p + 6));
    } else if (len >= 6 && strncmp(p, "ctype=", 6) == 0) {
      char *ct = decode_line_value(p + 6, len - 6);
      if (ct) {
        snprintf(m->content_type, sizeof m->content_type, "%s", ct);
        free(ct);
      }
    } else if (len > 4 && strncmp(p, "key=", 4) == 0) {
      free(key);
      key = decode_line_value(p + 4, len - 4);
    } else if (len > 6 && strncmp(p, "umeta=", 6) == 0 && user_meta) {
      free(*user_meta);
      *user_meta = decode_line_value(p + 6, len - 6);
    }
    p = nl + 1;
  }
  if (!have_size || !have_etag || !key) {
    free(key);
    if (user_meta) {
      free(*user_meta);
      *user_meta = NULL;
    }
    return NULL;
  }
  return key;
}

/* ----------------------------------------------------------------- index */

static bucket *find_bucket(ep_store *st, const char *name, size_t *pos) {
  size_t lo = 0, hi = st->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(st->buckets[mid]->name, name);
    if (c == 0) {
      if (pos) *pos = mid;
      return st->buckets[mid];
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (pos) *pos = lo;
  return NULL;
}

/* Index of the first entry whose key is >= key (or > key when strictly). */
static size_t lower_bound(const bucket *b, const char *key, int strictly) {
  size_t lo = 0, hi = b->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(b->objs[mid]->key, key);
    if (c < 0 || (strictly && c == 0))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static obj_entry *find_obj(const bucket *b, const char *key) {
  size_t i = lower_bound(b, key, 0);
  if (i < b->n && strcmp(b->objs[i]->key, key) == 0) return b->objs[i];
  return NULL;
}

static void free_entry(obj_entry *e) {
  if (!e) return;
  free(e->key);
  free(e->user_meta);
  free(e);
}

static void free_bucket(bucket *b) {
  if (!b) return;
  for (size_t i = 0; i < b->n; i++) free_entry(b->objs[i]);
  free(b->objs);
  free(b->name);
  free(b);
}

static bucket *add_bucket(ep_store *st, const char *name) {
  size_t pos;
  bucket *b = find_bucket(st, name, &pos);
  if (b) return b;
  if (st->n == st->cap) {
    size_t nc = st->cap ? st->cap * 2 : 16;
    bucket **nb = realloc(st->buckets, nc * sizeof *nb);
    if (!nb) return NULL;
    st->buckets = nb;
    st->cap = nc;
  }
  b = calloc(1, sizeof *b);
  if (!b || !(b->name = strdup(name))) {
    free(b);
    return NULL;
  }
  memmove(st->buckets + pos + 1, st->buckets + pos, (st->n - pos) * sizeof *st->buckets);
  st->buckets[pos] = b;
  st->n++;
  return b;
}

/* Inserts or replaces the entry for key; takes ownership of user_meta
 * (even on failure). */
static int index_upsert(bucket *b, const char *key, const ep_store_meta *m, char *user_meta) {
  size_t i = lower_bound(b, key, 0);
  if (i < b->n && strcmp(b->objs[i]->key, key) == 0) {
    b->bytes -= b->objs[i]->meta.size;
    b->objs[i]->meta = *m;
    free(b->objs[i]->user_meta);
    b->objs[i]->user_meta = user_meta;
    b->bytes += m->size;
    return 0;
  }
  if (b->n == b->cap) {
    size_t nc = b->cap ? b->cap * 2 : 64;
    obj_entry **no = realloc(b->objs, nc * sizeof *no);
    if (!no) {
      free(user_meta);
      return -1;
    }
    b->objs = no;
    b->cap = nc;
  }
  obj_entry *e = calloc(1, sizeof *e);
  if (!e || !(e->key = strdup(key))) {
    free(e);
    free(user_meta);
    return -1;
  }
  e->meta = *m;
  e->user_meta = user_meta;
  memmove(b->objs + i + 1, b->objs + i, (b->n - i) * sizeof *b->objs);
  b->objs[i] = e;
  b->n++;
  b->bytes += m->size;
  return 0;
}

static void index_remove(bucket *b, const char *key) {
  size_t i = lower_bound(b, key, 0);
  if (i < b->n && strcmp(b->objs[i]->key, key) == 0) {
    b->bytes -= b->objs[i]->meta.size;
    free_entry(b->objs[i]);
    memmove(b->objs + i, b->objs + i + 1, (b->n - i - 1) * sizeof *b->objs);
    b->n--;
  }
}

static int cmp_entry_ptr(const void *a, const void *b) {
  return strcmp((*(obj_entry *const *)a)->key, (*(obj_entry *const *)b)->key);
}

/* Indexes one bucket folder at open time. */
static void scan_bucket(ep_store *st, bucket *b) {
  char *dir = path_join3(st->root, b->name, NULL);
  DIR *d = dir ? opendir(dir) : NULL;
  if (!d) {
    free(dir);
    return;
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    const char *fn = de->d_name;
    if (strncmp(fn, ".tmp-", 5) == 0) {
      char *p = path_join3(dir, fn, NULL);
      if (p) unlink(p);
      free(p);
      continue;
    }
    size_t len = strlen(fn);
    if (len != 68 || strcmp(fn + 64, ".obj") != 0) continue;
    char *p = path_join3(dir, fn, NULL);
    int fd = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
    free(p);
    if (fd < 0) continue;
    unsigned char *hdr = malloc(HDR_SIZE);
    struct stat sb;
    ep_store_meta m;
    char *key = NULL, *umeta = NULL;
    if (hdr && pread(fd, hdr, HDR_SIZE, 0) == HDR_SIZE && fstat(fd, &sb) == 0)
      key = parse_header(hdr, HDR_SIZE, &m, &umeta);
    close(fd);
    free(hdr);
    if (!key) continue;
    char expect[70];
    key_file_name(key, expect);
    if (strcmp(expect, fn) == 0 && (uint64_t)sb.st_size == HDR_SIZE + m.size) {
      /* Appended unsorted; sorted once at the end. */
      if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        obj_entry **no = realloc(b->objs, nc * sizeof *no);
        if (!no) {
          free(key);
          free(umeta);
          continue;
        }
        b->objs = no;
        b->cap = nc;
      }
      obj_entry *e = calloc(1, sizeof *e);
      if (e) {
        e->key = key;
        e->meta = m;
        e->user_meta = umeta;
        b->objs[b->n++] = e;
        b->bytes += m.size;
        key = NULL;
        umeta = NULL;
      }
    } else {
      CPLError(CE_Warning, CPLE_AppDefined, "store: ignoring inconsistent object file %s/%s", b->name, fn);
    }
    free(key);
    free(umeta);
  }
  closedir(d);
  free(dir);
  if (b->n) qsort(b->objs, b->n, sizeof *b->objs, cmp_entry_ptr); /* qsort(NULL, 0) is undefined */
}

/* ------------------------------------------------------------ open/close */

ep_store *ep_store_open(const char *dir, char **err) {
  if (err) *err = NULL;
  if (!dir || !*dir) {
    if (err) *err = strdup("store: no data directory given");
    return NULL;
  }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    if (err) *err = strdup(CPLSPrintf("store: cannot create data directory %s: %s", dir, strerror(errno)));
    return NULL;
  }
  char *real = realpath(dir, NULL);
  struct stat sb;
  if (!real || stat(real, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    if (err) *err = strdup(CPLSPrintf("store: %s is not a usable directory", dir));
    free(real);
    return NULL;
  }
  /* Objects are the user's only: a directory others may enter is closed. */
  if ((sb.st_mode & 077) && chmod(real, 0700) != 0)
    CPLError(CE_Warning, CPLE_FileIO, "store: data directory %s is open to other users and cannot be made 0700: %s",
             real, strerror(errno));
  ep_store *st = calloc(1, sizeof *st);
  if (!st) {
    free(real);
    return NULL;
  }
  st->root = real;
  pthread_rwlock_init(&st->lock, NULL);
  DIR *d = opendir(real);
  if (!d) {
    if (err) *err = strdup(CPLSPrintf("store: cannot read data directory %s: %s", real, strerror(errno)));
    ep_store_close(st);
    return NULL;
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (!ep_store_bucket_name_valid(de->d_name)) continue;
    char *p = path_join3(real, de->d_name, NULL);
    if (p && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
      bucket *b = add_bucket(st, de->d_name);
      if (b) scan_bucket(st, b);
    }
    free(p);
  }
  closedir(d);
  return st;
}

void ep_store_close(ep_store *st) {
  if (!st) return;
  for (size_t i = 0; i < st->n; i++) free_bucket(st->buckets[i]);
  free(st->buckets);
  pthread_rwlock_destroy(&st->lock);
  free(st->root);
  free(st);
}

const char *ep_store_root(const ep_store *st) { return st ? st->root : NULL; }

/* --------------------------------------------------------------- buckets */

ep_store_status ep_store_create_bucket(ep_store *st, const char *name) {
  if (!ep_store_bucket_name_valid(name)) return ASD_STORE_BAD_BUCKET;
  pthread_rwlock_wrlock(&st->lock);
  ep_store_status rc = ASD_STORE_OK;
  if (find_bucket(st, name, NULL)) {
    rc = ASD_STORE_EXISTS;
  } else {
    char *p = path_join3(st->root, name, NULL);
    if (!p || (mkdir(p, 0700) != 0 && errno != EEXIST)) {
      CPLError(CE_Failure, CPLE_FileIO, "store: cannot create bucket folder for %s: %s", name, strerror(errno));
      rc = ASD_STORE_IO;
    } else if (!add_bucket(st, name)) {
      rc = ASD_STORE_IO;
    }
    free(p);
  }
  pthread_rwlock_unlock(&st->lock);
  return rc;
}

ep_store_status ep_store_head_bucket(ep_store *st, const char *name) {
  if (!ep_store_bucket_name_valid(name)) return ASD_STORE_BAD_BUCKET;
  pthread_rwlock_rdlock(&st->lock);
  bucket *b = find_bucket(st, name, NULL);
  pthread_rwlock_unlock(&st->lock);
  return b ? ASD_STORE_OK : ASD_STORE_NO_BUCKET;
}

ep_store_status ep_store_delete_bucket(ep_store *st, const char *name) {
  if (!ep_store_bucket_name_valid(name)) return ASD_STORE_BAD_BUCKET;
  pthread_rwlock_wrlock(&st->lock);
  size_t pos;
  bucket *b = find_bucket(st, name, &pos);
  ep_store_status rc = ASD_STORE_OK;
  if (!b) {
    rc = ASD_STORE_NO_BUCKET;
  } else if (b->n > 0) {
    rc = ASD_STORE_NOT_EMPTY;
  } else {
    char *p = path_join3(st->root, name, NULL);
    /* Temporary files of in-flight uploads may still be there; their
     * commit notices the bucket is gone and removes them. */
    if (p && rmdir(p) != 0 && errno != ENOENT) {
      DIR *d = opendir(p);
      struct dirent *de;
      while (d && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, ".tmp-", 5) == 0) {
          char *t = path_join3(p, de->d_name, NULL);
          if (t) unlink(t);
          free(t);
        }
      }
      if (d) closedir(d);
      rmdir(p);
    }
    free(p);
    free_bucket(b);
    memmove(st->buckets + pos, st->buckets + pos + 1, (st->n - pos - 1) * sizeof *st->buckets);
    st->n--;
  }
  pthread_rwlock_unlock(&st->lock);
  return rc;
}

char **ep_store_list_buckets(ep_store *st) {
  char **out = NULL;
  pthread_rwlock_rdlock(&st->lock);
  for (size_t i = 0; i < st->n; i++) out = CSLAddString(out, st->buckets[i]->name);
  pthread_rwlock_unlock(&st->lock);
  return out;
}

/* --------------------------------------------------------------- objects */

ep_store_status ep_store_head(ep_store *st, const char *bname, const char *key, ep_store_meta *meta) {
  return ep_store_head_user_meta(st, bname, key, meta, NULL);
}

ep_store_status ep_store_head_user_meta(ep_store *st, const char *bname, const char *key, ep_store_meta *meta,
                                          char **user_meta) {
  if (user_meta) *user_meta = NULL;
  if (!ep_store_bucket_name_valid(bname)) return ASD_STORE_BAD_BUCKET;
  if (!ep_store_key_valid(key)) return ASD_STORE_BAD_KEY;
  pthread_rwlock_rdlock(&st->lock);
  ep_store_status rc;
  bucket *b = find_bucket(st, bname, NULL);
  obj_entry *e = b ? find_obj(b, key) : NULL;
  if (!b)
    rc = ASD_STORE_NO_BUCKET;
  else if (!e)
    rc = ASD_STORE_NO_KEY;
  else {
    rc = ASD_STORE_OK;
    if (meta) *meta = e->meta;
    if (user_meta && e->user_meta) *user_meta = strdup(e->user_meta);
  }
  pthread_rwlock_unlock(&st->lock);
  return rc;
}

ep_store_status ep_store_open_read(ep_store *st, const char *bname, const char *key, int *fd,
                                     uint64_t *data_offset, ep_store_meta *meta) {
  return ep_store_open_read_user_meta(st, bname, key, fd, data_offset, meta, NULL);
}

ep_store_status ep_store_open_read_user_meta(ep_store *st, const char *bname, const char *key, int *fd,
                                               uint64_t *data_offset, ep_store_meta *meta, char **user_meta) {
  if (user_meta) *user_meta = NULL;
  if (!ep_store_bucket_name_valid(bname)) return ASD_STORE_BAD_BUCKET;
  if (!ep_store_key_valid(key)) return ASD_STORE_BAD_KEY;
  char fn[70];
  key_file_name(key, fn);
  char *p = path_join3(st->root, bname, fn);
  if (!p) return ASD_STORE_IO;
  /* The open happens under the read lock so that the descriptor and the
   * metadata describe the same version of the object. */
  pthread_rwlock_rdlock(&st->lock);
  ep_store_status rc;
  bucket *b = find_bucket(st, bname, NULL);
  obj_entry *e = b ? find_obj(b, key) : NULL;
  if (!b) {
    rc = ASD_STORE_NO_BUCKET;
  } else if (!e) {
    rc = ASD_STORE_NO_KEY;
  } else {
    int f = open(p, O_RDONLY | O_CLOEXEC);
    if (f < 0) {
      CPLError(CE_Failure, CPLE_FileIO, "store: cannot open object file of %s: %s", bname, strerror(errno));
      rc = ASD_STORE_IO;
    } else {
      rc = ASD_STORE_OK;
      *fd = f;
      if (data_offset) *data_offset = HDR_SIZE;
      if (meta) *meta = e->meta;
      if (user_meta && e->user_meta) *user_meta = strdup(e->user_meta);
    }
  }
  pthread_rwlock_unlock(&st->lock);
  free(p);
  return rc;
}

ep_store_status ep_store_get(ep_store *st, const char *bname, const char *key, size_t max_size,
                               unsigned char **data, size_t *len, ep_store_meta *meta) {
  int fd = -1;
  uint64_t off = 0;
  ep_store_meta m;
  ep_store_status rc = ep_store_open_read(st, bname, key, &fd, &off, &m);
  if (rc != ASD_STORE_OK) return rc;
  if ((max_size && m.size > max_size) || m.size > (uint64_t)SIZE_MAX - 1) {
    close(fd);
    return ASD_STORE_TOO_LARGE;
  }
  unsigned char *buf = malloc((size_t)m.size + 1);
  if (!buf) {
    close(fd);
    return ASD_STORE_IO;
  }
  size_t got = 0;
  while (got < m.size) {
    ssize_t r = pread(fd, buf + got, (size_t)m.size - got, (off_t)(off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (got != m.size) {
    free(buf);
    CPLError(CE_Failure, CPLE_FileIO, "store: short read of an object in %s", bname);
    return ASD_STORE_IO;
  }
  buf[got] = 0;
  *data = buf;
  *len = got;
  if (meta) *meta = m;
  return ASD_STORE_OK;
}

ep_store_status ep_store_delete(ep_store *st, const char *bname, const char *key) {
  if (!ep_store_bucket_name_valid(bname)) return ASD_STORE_BAD_BUCKET;
  if (!ep_store_key_valid(key)) return ASD_STORE_BAD_KEY;
  char fn[70];
  key_file_name(key, fn);
  char *p = path_join3(st->root, bname, fn);
  if (!p) return ASD_STORE_IO;
  pthread_rwlock_wrlock(&st->lock);
  ep_store_status rc = ASD_STORE_OK;
  bucket *b = find_bucket(st, bname, NULL);
  if (!b) {
    rc = ASD_STORE_NO_BUCKET;
  } else if (find_obj(b, key)) {
    if (unlink(p) != 0 && errno != ENOENT) {
      CPLError(CE_Failure, CPLE_FileIO, "store: cannot delete an object in %s: %s", bname, strerror(errno));
      rc = ASD_STORE_IO;
    } else {
      index_remove(b, key);
    }
  }
  pthread_rwlock_unlock(&st->lock);
  free(p);
  return rc;
}

/* ---------------------------------------------------------------- writer */

ep_store_status ep_store_writer_begin(ep_store *st, const char *bname, const char *key,
                                        ep_store_writer **out) {
  *out = NULL;
  if (!ep_store_bucket_name_valid(bname)) return ASD_STORE_BAD_BUCKET;
  if (!ep_store_key_valid(key)) return ASD_STORE_BAD_KEY;
  if (ep_store_head_bucket(st, bname) != ASD_STORE_OK) return ASD_STORE_NO_BUCKET;
  ep_store_writer *w = calloc(1, sizeof *w);
  if (!w) return ASD_STORE_IO;
  w->st = st;
  w->fd = -1;
  char uuid[37], tmpname[48];
  asd_uuid4(uuid);
  snprintf(tmpname, sizeof tmpname, ".tmp-%s", uuid);
  w->bucket = strdup(bname);
  w->key = strdup(key);
  w->tmp_path = path_join3(st->root, bname, tmpname);
  w->md5 = EVP_MD_CTX_new();
  w->sha = EVP_MD_CTX_new();
  if (!w->bucket || !w->key || !w->tmp_path || !w->md5 || !w->sha ||
      EVP_DigestInit_ex(w->md5, EVP_md5(), NULL) != 1 || EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL) != 1) {
    ep_store_writer_abort(w);
    return ASD_STORE_IO;
  }
  w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (w->fd < 0) {
    /* The bucket may have been deleted between the check and the open. */
    ep_store_status rc = errno == ENOENT ? ASD_STORE_NO_BUCKET : ASD_STORE_IO;
    if (rc == ASD_STORE_IO)
      CPLError(CE_Failure, CPLE_FileIO, "store: cannot create a temporary file in %s: %s", bname, strerror(errno));
    free(w->tmp_path);
    w->tmp_path = NULL;
    ep_store_writer_abort(w);
    return rc;
  }
  if (lseek(w->fd, HDR_SIZE, SEEK_SET) != HDR_SIZE) {
    ep_store_writer_abort(w);
    return ASD_STORE_IO;
  }
  *out = w;
  return ASD_STORE_OK;
}

int ep_store_writer_write(ep_store_writer *w, const void *data, size_t len) {
  if (!w || w->failed) return -1;
  const unsigned char *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t r = write(w->fd, p, left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      CPLError(CE_Failure, CPLE_FileIO, "store: write failed in %s: %s", w->bucket, strerror(errno));
      w->failed = 1;
      return -1;
    }
    p += r;
    left -= (size_t)r;
  }
  EVP_DigestUpdate(w->md5, data, len);
  EVP_DigestUpdate(w->sha, data, len);
  if (w->want & ASD_STORE_CK_CRC32C) w->crc32c = asd_crc32c(w->crc32c, data, len);
  if (w->want & ASD_STORE_CK_CRC32) w->crc32 = asd_crc32(w->crc32, data, len);
  if (w->sha1) EVP_DigestUpdate(w->sha1, data, len);
  w->size += len;
  return 0;
}

void ep_store_writer_want_checksums(ep_store_writer *w, unsigned kinds) {
  if (!w || w->size) return; /* only from the first byte */
  w->want = kinds;
  if ((kinds & ASD_STORE_CK_SHA1) && !w->sha1 && (w->sha1 = EVP_MD_CTX_new()) != NULL &&
      EVP_DigestInit_ex(w->sha1, EVP_sha1(), NULL) != 1) {
    EVP_MD_CTX_free(w->sha1);
    w->sha1 = NULL;
  }
}

uint64_t ep_store_writer_size(const ep_store_writer *w) { return w ? w->size : 0; }

static void digest_copy_final(EVP_MD_CTX *ctx, unsigned char *out) {
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  unsigned int n = 0;
  if (c && EVP_MD_CTX_copy_ex(c, ctx) == 1) EVP_DigestFinal_ex(c, out, &n);
  EVP_MD_CTX_free(c);
}

void ep_store_writer_md5(ep_store_writer *w, unsigned char out[16]) { digest_copy_final(w->md5, out); }

void ep_store_writer_sha256_hex(ep_store_writer *w, char out[65]) {
  unsigned char d[32];
  digest_copy_final(w->sha, d);
  asd_hex_encode(d, 32, out);
}

int ep_store_writer_checksum_b64(ep_store_writer *w, unsigned kind, char out[64]) {
  unsigned char d[32];
  int n = 0;
  if (!w) return -1;
  if (kind == ASD_STORE_CK_CRC32C && (w->want & kind)) {
    asd_crc_base64(w->crc32c, out);
    return 0;
  }
  if (kind == ASD_STORE_CK_CRC32 && (w->want & kind)) {
    asd_crc_base64(w->crc32, out);
    return 0;
  }
  if (kind == ASD_STORE_CK_SHA1 && w->sha1) {
    digest_copy_final(w->sha1, d);
    n = 20;
  } else if (kind == ASD_STORE_CK_SHA256) {
    digest_copy_final(w->sha, d);
    n = 32;
  } else {
    return -1;
  }
  EVP_EncodeBlock((unsigned char *)out, d, n);
  return 0;
}

void ep_store_writer_abort(ep_store_writer *w) {
  if (!w) return;
  EVP_MD_CTX_free(w->sha1);
  w->sha1 = NULL;
  if (w->fd >= 0) close(w->fd);
  if (w->tmp_path) unlink(w->tmp_path);
  free(w->tmp_path);
  free(w->final_path);
  free(w->user_meta);
  free(w->bucket);
  free(w->key);
  EVP_MD_CTX_free(w->md5);
  EVP_MD_CTX_free(w->sha);
  free(w);
}

ep_store_status ep_store_writer_commit(ep_store_writer *w, const char *content_type, ep_store_meta *meta) {
  if (!w) return ASD_STORE_IO;
  if (w->failed) {
    ep_store_writer_abort(w);
    return ASD_STORE_IO;
  }
  ep_store_meta m;
  memset(&m, 0, sizeof m);
  if (w->etag[0]) {
    snprintf(m.etag, sizeof m.etag, "%s", w->etag);
  } else {
    unsigned char md5[16];
    char hex[33];
    ep_store_writer_md5(w, md5);
    asd_hex_encode(md5, 16, hex);
    snprintf(m.etag, sizeof m.etag, "\"%s\"", hex);
  }
  m.size = w->size;
  m.mtime = asd_time_wall();
  if (content_type) snprintf(m.content_type, sizeof m.content_type, "%s", content_type);
  unsigned char *hdr = malloc(HDR_SIZE);
  if (hdr && build_header(w->key, &m, w->user_meta, hdr) != 0) {
    /* Only a key, content type and metadata too large together get here. */
    free(hdr);
    ep_store_writer_abort(w);
    return ASD_STORE_META_TOO_LARGE;
  }
  if (!hdr || pwrite(w->fd, hdr, HDR_SIZE, 0) != HDR_SIZE) {
    free(hdr);
    CPLError(CE_Failure, CPLE_FileIO, "store: cannot write an object header in %s", w->bucket);
    ep_store_writer_abort(w);
    return ASD_STORE_IO;
  }
  free(hdr);
  if (close(w->fd) != 0) {
    w->fd = -1;
    ep_store_writer_abort(w);
    return ASD_STORE_IO;
  }
  w->fd = -1;

  if (w->final_path) {
    /* A multipart part: rename into the upload's folder; the folder is gone
     * when the upload was aborted or completed while the part streamed in. */
    ep_store_status prc = ASD_STORE_OK;
    if (rename(w->tmp_path, w->final_path) != 0) {
      prc = errno == ENOENT ? ASD_STORE_NO_UPLOAD : ASD_STORE_IO;
      if (prc == ASD_STORE_IO)
        CPLError(CE_Failure, CPLE_FileIO, "store: cannot rename a part into place: %s", strerror(errno));
    } else {
      free(w->tmp_path);
      w->tmp_path = NULL;
      if (meta) *meta = m;
    }
    ep_store_writer_abort(w);
    return prc;
  }

  char fn[70];
  key_file_name(w->key, fn);
  char *final_path = path_join3(w->st->root, w->bucket, fn);
  ep_store_status rc = ASD_STORE_OK;
  pthread_rwlock_wrlock(&w->st->lock);
  bucket *b = find_bucket(w->st, w->bucket, NULL);
  if (!b) {
    rc = ASD_STORE_NO_BUCKET;
  } else if (!final_path || rename(w->tmp_path, final_path) != 0) {
    CPLError(CE_Failure, CPLE_FileIO, "store: cannot rename an object into place in %s: %s", w->bucket,
             strerror(errno));
    rc = ASD_STORE_IO;
  } else {
    free(w->tmp_path);
    w->tmp_path = NULL; /* nothing left to unlink */
    char *um = w->user_meta;
    w->user_meta = NULL; /* the index owns it now */
    if (index_upsert(b, w->key, &m, um) != 0) rc = ASD_STORE_IO;
  }
  pthread_rwlock_unlock(&w->st->lock);
  free(final_path);
  if (rc == ASD_STORE_OK && meta) *meta = m;
  ep_store_writer_abort(w); /* frees; unlinks the temp file only if still there */
  return rc;
}

void ep_store_writer_set_user_meta(ep_store_writer *w, const char *block) {
  if (!w) return;
  free(w->user_meta);
  w->user_meta = block && *block ? strdup(block) : NULL;
}

void ep_store_writer_set_etag(ep_store_writer *w, const char *etag) {
  if (w) snprintf(w->etag, sizeof w->etag, "%s", etag ? etag : "");
}

int ep_store_writer_append_fd(ep_store_writer *w, int fd, uint64_t offset, uint64_t len, int hash) {
  if (!w || w->failed) return -1;
  size_t bufsize = 1024 * 1024;
  unsigned char *buf = malloc(bufsize);
  if (!buf) return -1;
  int rc = 0;
  while (len > 0 && rc == 0) {
    size_t want = len < bufsize ? (size_t)len : bufsize;
    ssize_t r = pread(fd, buf, want, (off_t)offset);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      CPLError(CE_Failure, CPLE_FileIO, "store: short read while copying into %s", w->bucket);
      rc = -1;
      break;
    }
    if (hash) {
      rc = ep_store_writer_write(w, buf, (size_t)r);
    } else {
      /* Same as ep_store_writer_write without the digests. */
      const unsigned char *p = buf;
      size_t left = (size_t)r;
      while (left > 0) {
        ssize_t wr = write(w->fd, p, left);
        if (wr < 0 && errno == EINTR) continue;
        if (wr <= 0) {
          CPLError(CE_Failure, CPLE_FileIO, "store: write failed in %s: %s", w->bucket, strerror(errno));
          w->failed = 1;
          rc = -1;
          break;
        }
        p += wr;
        left -= (size_t)wr;
      }
      w->size += (size_t)r;
    }
    offset += (uint64_t)r;
    len -= (uint64_t)r;
  }
  free(buf);
  return rc;
}

ep_store_status ep_store_part_writer_begin(ep_store *st, const char *dir, const char *name,
                                             ep_store_writer **out) {
  *out = NULL;
  ep_store_writer *w = calloc(1, sizeof *w);
  if (!w) return ASD_STORE_IO;
  w->st = st;
  w->fd = -1;
  char uuid[37], tmpname[48];
  asd_uuid4(uuid);
  snprintf(tmpname, sizeof tmpname, ".tmp-%s", uuid);
  w->bucket = strdup("(multipart upload)"); /* only used in error messages */
  w->key = strdup(name);
  w->tmp_path = path_join3(dir, tmpname, NULL);
  w->final_path = path_join3(dir, name, NULL);
  w->md5 = EVP_MD_CTX_new();
  w->sha = EVP_MD_CTX_new();
  if (!w->bucket || !w->key || !w->tmp_path || !w->final_path || !w->md5 || !w->sha ||
      EVP_DigestInit_ex(w->md5, EVP_md5(), NULL) != 1 || EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL) != 1) {
    ep_store_writer_abort(w);
    return ASD_STORE_IO;
  }
  w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (w->fd < 0) {
    ep_store_status rc = errno == ENOENT ? ASD_STORE_NO_UPLOAD : ASD_STORE_IO;
    if (rc == ASD_STORE_IO) CPLError(CE_Failure, CPLE_FileIO, "store: cannot create a part file: %s", strerror(errno));
    free(w->tmp_path);
    w->tmp_path = NULL;
    ep_store_writer_abort(w);
    return rc;
  }
  if (lseek(w->fd, HDR_SIZE, SEEK_SET) != HDR_SIZE) {
    ep_store_writer_abort(w);
    return ASD_STORE_IO;
  }
  *out = w;
  return ASD_STORE_OK;
}

int ep_store_read_part_meta(const char *path, ep_store_meta *meta, uint64_t *data_offset) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  unsigned char *hdr = malloc(HDR_SIZE);
  struct stat sb;
  char *key = NULL;
  if (hdr && pread(fd, hdr, HDR_SIZE, 0) == HDR_SIZE && fstat(fd, &sb) == 0)
    key = parse_header(hdr, HDR_SIZE, meta, NULL);
  close(fd);
  free(hdr);
  int ok = key && (uint64_t)sb.st_size == HDR_SIZE + meta->size;
  free(key);
  if (ok && data_offset) *data_offset = HDR_SIZE;
  return ok ? 0 : -1;
}

ep_store_status ep_store_put(ep_store *st, const char *bname, const char *key, const void *data, size_t len,
                               const char *content_type, ep_store_meta *meta) {
  ep_store_writer *w = NULL;
  ep_store_status rc = ep_store_writer_begin(st, bname, key, &w);
  if (rc != ASD_STORE_OK) return rc;
  if (len && ep_store_writer_write(w, data, len) != 0) {
    ep_store_writer_abort(w);
    return ASD_STORE_IO;
  }
  return ep_store_writer_commit(w, content_type, meta);
}

/* --------------------------------------------------------------- listing */

static int push_entry(ep_store_listing *l, size_t *cap, const char *key, size_t keylen, int is_prefix,
                      const ep_store_meta *m) {
  if (l->count == *cap) {
    size_t nc = *cap ? *cap * 2 : 32;
    ep_store_entry *ne = realloc(l->entries, nc * sizeof *ne);
    if (!ne) return -1;
    l->entries = ne;
    *cap = nc;
  }
  ep_store_entry *e = &l->entries[l->count];
  memset(e, 0, sizeof *e);
  e->key = malloc(keylen + 1);
  if (!e->key) return -1;
  memcpy(e->key, key, keylen);
  e->key[keylen] = '\0';
  e->is_prefix = is_prefix;
  if (m) e->meta = *m;
  l->count++;
  return 0;
}

ep_store_status ep_store_list(ep_store *st, const char *bname, const char *prefix, const char *delimiter,
                                const char *after, size_t max_keys, ep_store_listing *out) {
  memset(out, 0, sizeof *out);
  if (!ep_store_bucket_name_valid(bname)) return ASD_STORE_BAD_BUCKET;
  if (!prefix) prefix = "";
  if (!after) after = "";
  if (delimiter && !*delimiter) delimiter = NULL;
  size_t plen = strlen(prefix), cap = 0;
  ep_store_status rc = ASD_STORE_OK;
  pthread_rwlock_rdlock(&st->lock);
  bucket *b = find_bucket(st, bname, NULL);
  if (!b) {
    rc = ASD_STORE_NO_BUCKET;
    goto done;
  }
  /* Start at the first key that is both > after and >= prefix. */
  size_t i = lower_bound(b, strcmp(after, prefix) >= 0 ? after : prefix, strcmp(after, prefix) >= 0 && *after);
  const char *last_cp = NULL;
  size_t last_cp_len = 0;
  for (; i < b->n; i++) {
    const obj_entry *e = b->objs[i];
    if (strncmp(e->key, prefix, plen) != 0) break; /* sorted: no later key has the prefix */
    const char *cut = delimiter ? strstr(e->key + plen, delimiter) : NULL;
    if (cut) {
      size_t cplen = (size_t)(cut - e->key) + strlen(delimiter);
      if (last_cp && cplen == last_cp_len && strncmp(e->key, last_cp, cplen) == 0) continue;
      /* A common prefix at or before the continuation point was already returned. */
      if (*after) {
        int c = strncmp(e->key, after, cplen);
        if (c < 0 || (c == 0 && strlen(after) <= cplen)) continue;
      }
      if (out->count >= max_keys) {
        out->truncated = 1;
        break;
      }
      if (push_entry(out, &cap, e->key, cplen, 1, NULL) != 0) {
        rc = ASD_STORE_IO;
        break;
      }
      last_cp = e->key;
      last_cp_len = cplen;
    } else {
      if (out->count >= max_keys) {
        out->truncated = 1;
        break;
      }
      if (push_entry(out, &cap, e->key, strlen(e->key), 0, &e->meta) != 0) {
        rc = ASD_STORE_IO;
        break;
      }
    }
  }
  if (out->truncated && out->count > 0) out->next_after = strdup(out->entries[out->count - 1].key);
  if (out->truncated && out->count == 0) out->truncated = 0; /* max_keys == 0 */
done:
  pthread_rwlock_unlock(&st->lock);
  if (rc != ASD_STORE_OK) ep_store_listing_free(out);
  return rc;
}

void ep_store_listing_free(ep_store_listing *l) {
  if (!l) return;
  for (size_t i = 0; i < l->count; i++) free(l->entries[i].key);
  free(l->entries);
  free(l->next_after);
  memset(l, 0, sizeof *l);
}

void ep_store_totals(ep_store *st, uint64_t *objects, uint64_t *bytes) {
  uint64_t o = 0, by = 0;
  pthread_rwlock_rdlock(&st->lock);
  for (size_t i = 0; i < st->n; i++) {
    o += st->buckets[i]->n;
    by += st->buckets[i]->bytes;
  }
  pthread_rwlock_unlock(&st->lock);
  if (objects) *objects = o;
  if (bytes) *bytes = by;
}

int ep_store_parse_s3_uri(const char *uri, int allow_empty_key, char **bname, char **key) {
  *bname = NULL;
  *key = NULL;
  if (!uri || strncmp(uri, "s3://", 5) != 0) return -1;
  const char *b = uri + 5;
  const char *slash = strchr(b, '/');
  size_t blen = slash ? (size_t)(slash - b) : strlen(b);
  const char *k = slash ? slash + 1 : "";
  if (blen == 0 || (!*k && !allow_empty_key)) return -1;
  *bname = strndup(b, blen);
  *key = strdup(k);
  if (!*bname || !*key) {
    free(*bname);
    free(*key);
    *bname = *key = NULL;
    return -1;
  }
  return 0;
}
