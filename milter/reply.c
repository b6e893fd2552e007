/* SPDX-License-Identifier: MIT */
/*
 * reply.c - automatic replies: composition and injection.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <gmime/gmime.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "milter/reply.h"
#include "lib/util.h"

struct buf {
    char *s;
    size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = wp_realloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void printf_(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_(struct buf *b, const char *fmt, ...)
{
    char tmp[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        put(b, tmp, (size_t)n);
        return;
    }
    /* Longer than tmp (a huge Subject or Message-ID of the original): format
     * it whole.  Cutting it lost the line's LF, and the next header, such as
     * Auto-Submitted, was glued onto the cut line. */
    char *big = wp_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    put(b, big, (size_t)n);
    free(big);
}

static bool has_header(const char *headers, size_t len, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = headers; line < headers + len;) {
        if (wp_strnieq(line, name, n) && line[n] == ':')
            return true;
        const char *nl = memchr(line, '\n', (size_t)(headers + len - line));
        if (!nl)
            break;
        line = nl + 1;
    }
    return false;
}

static bool starts_header_block(const char *text)
{
    static const char *const starters[] = { "Subject:", "MIME-Version:", "Content-Type:" };
    for (size_t i = 0; i < sizeof(starters) / sizeof(starters[0]); i++)
        if (wp_strnieq(text, starters[i], strlen(starters[i])))
            return true;
    return false;
}

/* A reply to all goes to at most this many addresses: an automatic answer
 * must not become a way to send one message to thousands (backscatter). */
#define WP_REPLY_MAX_RCPTS 50

static void add_rcpt(struct wp_reply_message *rm, const char *addr, const char *from)
{
    if (!addr || !*addr || (from && wp_strieq(addr, from)) || rm->nrcpts >= WP_REPLY_MAX_RCPTS)
        return;
    for (size_t i = 0; i < rm->nrcpts; i++)
        if (wp_strieq(rm->rcpts[i], addr))
            return;
    rm->rcpts = wp_realloc(rm->rcpts, (rm->nrcpts + 1) * sizeof(char *));
    rm->rcpts[rm->nrcpts++] = wp_strdup(addr);
}

static void add_all(struct wp_reply_message *rm, const struct wp_message *m, const char *name, const char *from)
{
    char **v;
    size_t n = wp_message_addresses(m, name, &v);
    for (size_t i = 0; i < n; i++)
        add_rcpt(rm, v[i], from);
    wp_strv_free(v, n);
}

bool wp_reply_build(const struct wp_message *m, const struct wp_reply *r, const char *from,
                    struct wp_reply_message *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    if (!wp_message_human(m)) {
        *why = "the message is not human-generated (bulk, list, auto-submitted or a bounce)";
        return false;
    }
    /* To the Reply-To addresses, else From, else the envelope sender. */
    add_all(out, m, "Reply-To", from);
    if (!out->nrcpts)
        add_all(out, m, "From", from);
    if (!out->nrcpts)
        add_rcpt(out, m->return_path, from);
    if (r->to_all) {
        add_all(out, m, "To", from);
        add_all(out, m, "Cc", from);
    }
    if (!out->nrcpts) {
        *why = "nobody to reply to";
        return false;
    }

    const char *text = r->text;
    const char *hdr = NULL, *body = text;
    size_t hlen = 0;
    if (text[0] == '+' || starts_header_block(text)) {
        if (text[0] == '+')
            text++;
        const char *blank = strstr(text, "\n\n");
        hdr = text;
        hlen = blank ? (size_t)(blank - text) + 1 : strlen(text);
        body = blank ? blank + 2 : "";
    }
    struct buf b = { NULL, 0, 0 };
    if (!hdr || !has_header(hdr, hlen, "From"))
        printf_(&b, "From: <%s>\n", from);
    printf_(&b, "To: ");
    for (size_t i = 0; i < out->nrcpts; i++)
        printf_(&b, "%s<%s>", i ? ",\n " : "", out->rcpts[i]);
    puts_(&b, "\n");
    if (!hdr || !has_header(hdr, hlen, "Subject")) {
        const char *raw = wp_message_header(m, "Subject");
        char *subject = wp_header_decode(raw ? raw : "");
        char *re = wp_strnieq(subject, "Re:", 3) ? wp_strdup(subject) : wp_asprintf("Re: %s", subject);
        char *enc = g_mime_utils_header_encode_text(NULL, re, NULL);
        printf_(&b, "Subject: %s\n", enc ? enc : re);
        g_free(enc);
        free(re);
        free(subject);
    }
    char date[64];
    wp_rfc5322_date(date, sizeof(date));
    time_t now = time(NULL);
    printf_(&b, "Date: %s\n", date);
    const char *at = strchr(from, '@');
    printf_(&b, "Message-ID: <%lld.%ld.%u@%s>\n", (long long)now, (long)getpid(), (unsigned)rand(),
            at ? at + 1 : "waypost");
    const char *mid = wp_message_header(m, "Message-ID");
    if (mid) {
        while (*mid == ' ')
            mid++;
        printf_(&b, "In-Reply-To: %s\nReferences: %s\n", mid, mid);
    }
    puts_(&b, "Auto-Submitted: auto-replied\n");
    if (hdr) {
        put(&b, hdr, hlen);
        if (hlen && hdr[hlen - 1] != '\n')
            puts_(&b, "\n"); /* "+Subject: x" alone: the next header went onto its line */
    }
    /* MIME-Version whenever the text has none: its own Content-Type counts
     * only with it (RFC 2045), and one of its own is not doubled. */
    if (!hdr || !has_header(hdr, hlen, "MIME-Version"))
        puts_(&b, "MIME-Version: 1.0\n");
    if (!hdr || !has_header(hdr, hlen, "Content-Type"))
        puts_(&b, "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n");
    puts_(&b, "\n");
    puts_(&b, body);
    if (b.len && b.s[b.len - 1] != '\n')
        puts_(&b, "\n");
    out->text = b.s;
    return true;
}

void wp_reply_message_free(struct wp_reply_message *rm)
{
    free(rm->text);
    wp_strv_free(rm->rcpts, rm->nrcpts);
    memset(rm, 0, sizeof(*rm));
}

/* ---------------------------------------------------------------- injection */

static bool smtp_reply(FILE *f, int want, char *err, size_t errlen, const char *step)
{
    char line[1024];
    do {
        if (!fgets(line, sizeof(line), f)) {
            snprintf(err, errlen, "%s: connection closed", step);
            return false;
        }
    } while (strlen(line) > 3 && line[3] == '-');
    if (line[0] - '0' != want) {
        line[strcspn(line, "\r\n")] = '\0';
        snprintf(err, errlen, "%s: %s", step, line);
        return false;
    }
    return true;
}

static bool send_smtp(const char *hostport, const struct wp_reply_message *rm, char *err, size_t errlen)
{
    char host[256];
    wp_strlcpy(host, hostport, sizeof(host));
    char *colon = strrchr(host, ':');
    if (!colon) {
        snprintf(err, errlen, "reply_via smtp:%s: expected HOST:PORT", hostport);
        return false;
    }
    *colon = '\0';
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, colon + 1, &hints, &res);
    if (gai) {
        snprintf(err, errlen, "%s: %s", host, gai_strerror(gai));
        return false;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = { 30, 0 };
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        snprintf(err, errlen, "connect to %s: %s", hostport, strerror(errno));
        freeaddrinfo(res);
        if (fd >= 0)
            close(fd);
        return false;
    }
    freeaddrinfo(res);
    FILE *f = fdopen(fd, "r+");
    bool ok = smtp_reply(f, 2, err, errlen, "greeting");
    if (ok) {
        fprintf(f, "EHLO waypost\r\n");
        fflush(f);
        ok = smtp_reply(f, 2, err, errlen, "EHLO");
    }
    if (ok) {
        fprintf(f, "MAIL FROM:<>\r\n");
        fflush(f);
        ok = smtp_reply(f, 2, err, errlen, "MAIL FROM");
    }
    size_t accepted = 0;
    for (size_t i = 0; ok && i < rm->nrcpts; i++) {
        fprintf(f, "RCPT TO:<%s>\r\n", rm->rcpts[i]);
        fflush(f);
        char e2[256];
        if (smtp_reply(f, 2, e2, sizeof(e2), "RCPT TO"))
            accepted++;
        else
            snprintf(err, errlen, "%s", e2);
    }
    if (ok && accepted == 0)
        ok = false;
    if (ok) {
        fprintf(f, "DATA\r\n");
        fflush(f);
        ok = smtp_reply(f, 3, err, errlen, "DATA");
    }
    if (ok) {
        for (const char *line = rm->text; *line;) {
            const char *nl = strchr(line, '\n');
            size_t n = nl ? (size_t)(nl - line) : strlen(line);
            if (line[0] == '.')
                fputc('.', f); /* dot-stuffing */
            fwrite(line, 1, n, f);
            fputs("\r\n", f);
            line = nl ? nl + 1 : line + n;
        }
        fputs(".\r\n", f);
        fflush(f);
        ok = smtp_reply(f, 2, err, errlen, "end of data");
    }
    fprintf(f, "QUIT\r\n");
    fclose(f);
    return ok;
}

static bool send_sendmail(const char *path, const struct wp_reply_message *rm, char *err, size_t errlen)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return false;
    }
    /* argv is built before fork: no malloc in the child of a threaded process */
    char **argv = wp_calloc(rm->nrcpts + 6, sizeof(char *));
    size_t a = 0;
    argv[a++] = (char *)path;
    argv[a++] = "-i";
    argv[a++] = "-f";
    argv[a++] = "";
    argv[a++] = "--";
    for (size_t i = 0; i < rm->nrcpts; i++)
        argv[a++] = rm->rcpts[i];
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        free(argv);
        return false;
    }
    if (pid == 0) {
        dup2(pipefd[0], 0);
        execv(path, argv);
        _exit(127);
    }
    free(argv);
    close(pipefd[0]);
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    size_t len = strlen(rm->text), off = 0;
    while (off < len) {
        ssize_t w = write(pipefd[1], rm->text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(pipefd[1]);
    signal(SIGPIPE, old);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "%s exited with status %d", path, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return false;
    }
    return true;
}

bool wp_reply_send(const char *via, const struct wp_reply_message *rm, char *err, size_t errlen)
{
    if (strncmp(via, "smtp:", 5) == 0)
        return send_smtp(via + 5, rm, err, errlen);
    if (strncmp(via, "sendmail:", 9) == 0)
        return send_sendmail(via + 9, rm, err, errlen);
    snprintf(err, errlen, "unknown reply_via '%s'", via);
    return false;
}
