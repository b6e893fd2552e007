/* SPDX-License-Identifier: MIT */
/*
 * spool.c - per-queue message files written atomically and durably.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "odmr/spool.h"
#include "lib/util.h"

#define SPOOL_MAGIC "WAYPOST-ODMR 1\n"

bool wp_spool_queue_name_valid(const char *q)
{
    size_t n = strlen(q);
    if (n == 0 || n > 255 || q[0] == '.')
        return false;
    if (q[0] == '[') {
        if (q[n - 1] != ']' || n < 3)
            return false;
        for (size_t i = 1; i + 1 < n; i++)
            if (!((q[i] >= '0' && q[i] <= '9') || (q[i] >= 'a' && q[i] <= 'f') ||
                  (q[i] >= 'A' && q[i] <= 'F') || q[i] == '.' || q[i] == ':'))
                return false;
        return true;
    }
    for (size_t i = 0; i < n; i++)
        if (!((q[i] >= 'a' && q[i] <= 'z') || (q[i] >= 'A' && q[i] <= 'Z') || (q[i] >= '0' && q[i] <= '9') ||
              q[i] == '.' || q[i] == '-' || q[i] == '_'))
            return false;
    return true;
}

static bool id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n >= WP_SPOOL_ID_MAX || id[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f') || id[i] == '.'))
            return false;
    return true;
}

static bool fsync_dir(const char *dir, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0) {
        snprintf(err, errlen, "fsync %s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    close(fd);
    return true;
}

static void remove_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, ".tmp.", 5) == 0) {
            char *p = wp_asprintf("%s/%s", dir, e->d_name);
            unlink(p);
            free(p);
        }
    }
    closedir(d);
}

bool wp_spool_open(const char *root, char *err, size_t errlen)
{
    if (mkdir(root, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "mkdir %s: %s", root, strerror(errno));
        return false;
    }
    struct stat st;
    if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a directory", root);
        return false;
    }
    size_t n;
    char **queues = wp_spool_queues(root, &n);
    for (size_t i = 0; i < n; i++) {
        char *dir = wp_asprintf("%s/%s", root, queues[i]);
        remove_temporaries(dir);
        free(dir);
    }
    wp_spool_names_free(queues, n);
    return true;
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool addr_ok(const char *a)
{
    return strpbrk(a, "\r\n") == NULL;
}

/* Write dir/id through a temporary file: envelope, then body. */
static bool write_file(const char *dir, const char *id, const struct wp_spool_msg *m, const char *body,
                       size_t len, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
        return false;
    }
    char *tmp = wp_asprintf("%s/.tmp.%s", dir, id);
    char *final = wp_asprintf("%s/%s", dir, id);
    size_t cap = 128 + strlen(m->queue) + strlen(m->sender);
    for (size_t i = 0; i < m->nrcpts; i++)
        cap += strlen(m->rcpts[i]) + 3;
    char *env = wp_malloc(cap);
    int off =
        snprintf(env, cap, SPOOL_MAGIC "Q %s\nT %lld\nS %s\n", m->queue, (long long)m->arrival, m->sender);
    for (size_t i = 0; i < m->nrcpts; i++)
        off += snprintf(env + off, cap - (size_t)off, "R %s\n", m->rcpts[i]);
    off += snprintf(env + off, cap - (size_t)off, "\n");
    bool ok = false;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "create %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (!write_all(fd, env, (size_t)off) || !write_all(fd, body, len) || fsync(fd) < 0) {
        snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) < 0 || rename(tmp, final) < 0) {
        snprintf(err, errlen, "rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    ok = fsync_dir(dir, err, errlen);
out:
    free(env);
    free(tmp);
    free(final);
    return ok;
}

bool wp_spool_store(const char *root, const char *queue, const char *sender, char *const *rcpts,
                    size_t nrcpts, const char *body, size_t len, time_t arrival, char *id, char *err,
                    size_t errlen)
{
    if (!wp_spool_queue_name_valid(queue)) {
        snprintf(err, errlen, "bad queue name '%s'", queue);
        return false;
    }
    if (nrcpts == 0 || !addr_ok(sender)) {
        snprintf(err, errlen, "bad envelope");
        return false;
    }
    for (size_t i = 0; i < nrcpts; i++)
        if (!addr_ok(rcpts[i]) || !rcpts[i][0]) {
            snprintf(err, errlen, "bad recipient");
            return false;
        }
    /* Ids sort by arrival (fixed-width hex seconds and microseconds); the
     * random part keeps concurrent writers apart. */
    struct timeval tv;
    gettimeofday(&tv, NULL);
    unsigned char rnd[6];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        memset(rnd, 0, sizeof(rnd));
    snprintf(id, WP_SPOOL_ID_MAX, "%010llx.%05lx.%02x%02x%02x%02x%02x%02x", (unsigned long long)tv.tv_sec,
             (unsigned long)tv.tv_usec, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    struct wp_spool_msg m;
    memset(&m, 0, sizeof(m));
    wp_strlcpy(m.queue, queue, sizeof(m.queue));
    m.arrival = arrival;
    m.sender = (char *)sender;
    m.rcpts = (char **)rcpts;
    m.nrcpts = nrcpts;
    char *dir = wp_asprintf("%s/%s", root, queue);
    bool ok = write_file(dir, id, &m, body, len, err, errlen);
    free(dir);
    return ok;
}

void wp_spool_msg_free(struct wp_spool_msg *m)
{
    free(m->sender);
    for (size_t i = 0; i < m->nrcpts; i++)
        free(m->rcpts[i]);
    free(m->rcpts);
    free(m->body);
    memset(m, 0, sizeof(*m));
}

/* Parse the envelope of buf (len bytes); *hdr_len is where the body starts. */
static bool parse_envelope(const char *buf, size_t len, struct wp_spool_msg *m, size_t *hdr_len)
{
    size_t ml = strlen(SPOOL_MAGIC);
    if (len < ml || memcmp(buf, SPOOL_MAGIC, ml) != 0)
        return false;
    size_t pos = ml;
    bool have_q = false, have_t = false, have_s = false;
    size_t cap = 0;
    for (;;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl)
            return false;
        size_t n = (size_t)(nl - (buf + pos));
        const char *line = buf + pos;
        pos += n + 1;
        if (n == 0)
            break;
        if (n < 2 || line[1] != ' ')
            return false;
        const char *v = line + 2;
        size_t vn = n - 2;
        switch (line[0]) {
        case 'Q':
            if (vn >= sizeof(m->queue))
                return false;
            memcpy(m->queue, v, vn);
            m->queue[vn] = '\0';
            have_q = true;
            break;
        case 'T': {
            char num[32];
            if (vn == 0 || vn >= sizeof(num))
                return false;
            memcpy(num, v, vn);
            num[vn] = '\0';
            char *end;
            long long t = strtoll(num, &end, 10);
            if (*end)
                return false;
            m->arrival = (time_t)t;
            have_t = true;
            break;
        }
        case 'S':
            free(m->sender);
            m->sender = wp_strndup(v, vn);
            have_s = true;
            break;
        case 'R':
            if (vn == 0)
                return false;
            if (m->nrcpts == cap) {
                cap = cap ? cap * 2 : 4;
                m->rcpts = wp_realloc(m->rcpts, cap * sizeof(char *));
            }
            m->rcpts[m->nrcpts++] = wp_strndup(v, vn);
            break;
        default: return false;
        }
    }
    *hdr_len = pos;
    return have_q && have_t && have_s;
}

bool wp_spool_load(const char *root, const char *queue, const char *id, bool with_body,
                   struct wp_spool_msg *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    if (!wp_spool_queue_name_valid(queue) || !id_valid(id)) {
        snprintf(err, errlen, "bad queue or message name");
        return false;
    }
    char *path = wp_asprintf("%s/%s/%s", root, queue, id);
    size_t len;
    /* The envelope alone is small; without the body read only a prefix. */
    char *buf = NULL;
    if (with_body) {
        buf = wp_read_file(path, (size_t)1 << 31, &len, err, errlen);
    } else {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            struct stat st;
            size_t cap = 65536;
            buf = wp_malloc(cap + 1);
            ssize_t r = read(fd, buf, cap);
            len = r > 0 ? (size_t)r : 0;
            buf[len] = '\0';
            m->size = fstat(fd, &st) == 0 ? (size_t)st.st_size : len;
            close(fd);
        } else {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        }
    }
    free(path);
    if (!buf)
        return false;
    size_t hdr;
    if (!parse_envelope(buf, len, m, &hdr) || strcmp(m->queue, queue) != 0) {
        snprintf(err, errlen, "%s/%s: damaged envelope", queue, id);
        free(buf);
        wp_spool_msg_free(m);
        return false;
    }
    wp_strlcpy(m->id, id, sizeof(m->id));
    if (with_body) {
        m->size = len;
        m->body_len = len - hdr;
        memmove(buf, buf + hdr, m->body_len + 1);
        m->body = buf;
    } else {
        free(buf);
    }
    return true;
}

int wp_spool_lock(const char *root, const char *queue)
{
    char dir[4096];
    if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", root, queue) >= sizeof(dir)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

bool wp_spool_sync(const char *root, const char *queue, char *err, size_t errlen)
{
    if (!wp_spool_queue_name_valid(queue)) {
        snprintf(err, errlen, "bad queue name");
        return false;
    }
    char *dir = wp_asprintf("%s/%s", root, queue);
    bool ok = fsync_dir(dir, err, errlen);
    free(dir);
    return ok;
}

bool wp_spool_remove(const char *root, const char *queue, const char *id, bool sync_dir, char *err,
                     size_t errlen)
{
    if (!wp_spool_queue_name_valid(queue) || !id_valid(id)) {
        snprintf(err, errlen, "bad queue or message name");
        return false;
    }
    char *dir = wp_asprintf("%s/%s", root, queue);
    char *path = wp_asprintf("%s/%s", dir, id);
    bool ok = true;
    if (unlink(path) < 0 && errno != ENOENT) {
        snprintf(err, errlen, "unlink %s: %s", path, strerror(errno));
        ok = false;
    }
    if (ok && sync_dir)
        ok = fsync_dir(dir, err, errlen);
    free(path);
    free(dir);
    return ok;
}

bool wp_spool_settle(const char *root, struct wp_spool_msg *m, const bool *done, bool sync_dir, char *err,
                     size_t errlen)
{
    size_t keep = 0;
    for (size_t i = 0; i < m->nrcpts; i++)
        if (!done[i])
            keep++;
    if (keep == m->nrcpts)
        return true;
    if (keep == 0) {
        if (!wp_spool_remove(root, m->queue, m->id, sync_dir, err, errlen))
            return false;
        for (size_t i = 0; i < m->nrcpts; i++)
            free(m->rcpts[i]);
        m->nrcpts = 0;
        return true;
    }
    /* Rewrite under the same name with the recipients still to go. */
    struct wp_spool_msg rest = *m;
    rest.rcpts = wp_calloc(keep, sizeof(char *));
    rest.nrcpts = 0;
    for (size_t i = 0; i < m->nrcpts; i++)
        if (!done[i])
            rest.rcpts[rest.nrcpts++] = m->rcpts[i];
    bool ok;
    char *dir = wp_asprintf("%s/%s", root, m->queue);
    if (m->body) {
        ok = write_file(dir, m->id, &rest, m->body, m->body_len, err, errlen);
    } else {
        struct wp_spool_msg full;
        ok = wp_spool_load(root, m->queue, m->id, true, &full, err, errlen);
        if (ok)
            ok = write_file(dir, m->id, &rest, full.body, full.body_len, err, errlen);
        if (ok)
            wp_spool_msg_free(&full);
    }
    free(dir);
    if (ok) {
        for (size_t i = 0; i < m->nrcpts; i++)
            if (done[i])
                free(m->rcpts[i]);
        free(m->rcpts);
        m->rcpts = rest.rcpts;
        m->nrcpts = rest.nrcpts;
    } else {
        free(rest.rcpts);
    }
    return ok;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Entries of dir that pass want(), sorted. */
static char **list_dir(const char *dir, bool (*want)(const char *), size_t *n)
{
    *n = 0;
    size_t cap = 16;
    char **v = wp_calloc(cap + 1, sizeof(char *));
    DIR *d = opendir(dir);
    if (!d)
        return v;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!want(e->d_name))
            continue;
        if (*n == cap) {
            cap *= 2;
            v = wp_realloc(v, (cap + 1) * sizeof(char *));
        }
        v[(*n)++] = wp_strdup(e->d_name);
    }
    closedir(d);
    v[*n] = NULL;
    qsort(v, *n, sizeof(char *), cmp_names);
    return v;
}

char **wp_spool_list(const char *root, const char *queue, size_t *n)
{
    if (!wp_spool_queue_name_valid(queue)) {
        *n = 0;
        return wp_calloc(1, sizeof(char *));
    }
    char *dir = wp_asprintf("%s/%s", root, queue);
    char **v = list_dir(dir, id_valid, n);
    free(dir);
    return v;
}

char **wp_spool_queues(const char *root, size_t *n)
{
    return list_dir(root, wp_spool_queue_name_valid, n);
}

void wp_spool_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}
