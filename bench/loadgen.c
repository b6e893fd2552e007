/* SPDX-License-Identifier: MIT */
/*
 * loadgen - closed-loop load generator for the Postfix lookup protocols
 * Waypost serves: socketmap, the policy delegation protocol and tcp_table.
 *
 *   loadgen [-c CONNS] [-t THREADS] [-d SECONDS] [-w SECONDS] [-k KEYFILE]
 *           [-m MAP] [-a CLIENT_ADDRESS] [-f SENDER] TARGET
 *   TARGET = PROTO:unix:PATH | PROTO:inet:IPV4:PORT, PROTO = socketmap|policy|tcp
 *
 * It opens CONNS persistent connections and keeps exactly one request
 * outstanding on each: send, wait for the whole reply, send the next.  That
 * is what Postfix's clients do (no pipelining), so CONNS stands for the
 * number of Postfix processes asking at once.  The connections are spread
 * over THREADS threads (default: min(CONNS, online CPUs)), each driving its
 * share through epoll.
 *
 * Requests, one per key; the keys come from KEYFILE (one per line, cycled
 * through; each thread starts at a different place) or from a built-in set
 * of 4096 addresses user<N>@example.net:
 *   socketmap  "<len>:<MAP> <key>,"           MAP defaults to "transport"
 *   tcp        "get <key, %XX-encoded as Postfix does>\n"
 *   policy     the 29 attributes Postfix 3.7's smtpd sends at RCPT, with
 *              recipient=<key>, sender=SENDER, client_address=CLIENT_ADDRESS,
 *              sasl_username empty, then an empty line
 * Replies are checked against the exact framing:
 *   socketmap  "<len>:OK <value>,"  found ("OK" with no value is an error)
 *              "<len>:NOTFOUND ,"   notfound
 *              "<len>:TEMP|TIMEOUT|PERM <reason>,"  failed
 *   tcp        "200 <value>\n" found, "500 <text>\n" notfound, "400 <text>\n" failed
 *   policy     "action=<action>\n\n": DUNNO is notfound, any other action found
 * Anything else, a connection the server closes, bytes after a reply, or a
 * reply that has not come 2 s after the end is an error; a connection with
 * an error is closed and not reopened.
 *
 * Timeline: connect everything, warm up for -w seconds (and until every
 * connection has had a reply, at most 10 s more: a server that forks on
 * demand is then fully started), measure for -d seconds, then let each
 * connection finish its last request.  Only replies completed inside the
 * measured window count.  Latency runs from just before the request is
 * written to the parse of the reply's last byte.  The run always ends by
 * itself, within -w + 10 + -d + 2 seconds.
 *
 * Output: one line of key=value, e.g.
 *   proto=socketmap conns=16 threads=2 requests=1500000 seconds=5.00 rps=300000
 *   p50_us=55.8 p99_us=78.1 max_us=410.0 errors=0 found=... notfound=... failed=...
 *   server_cpu_us=3.3 warmup_s=1.00 unanswered=0 starved=0
 * server_cpu_us is the machine's busy CPU time during the window, less this
 * program's own, per request: the server's cost if nothing else runs.
 * warmup_s is the warm-up it took; unanswered counts the connections that
 * still had had no reply when the window opened, starved those that had no
 * reply inside it: when either is not 0, the figures stand for fewer
 * connections than asked for (a server that serves connections unfairly).
 * Exit status: 0 when requests were answered and there was no error, 1
 * otherwise, 2 for a usage error.
 *
 * Limits: percentiles come from a log-linear histogram (fixed memory however
 * long the run), accurate to within 1 %.  Replies over REPLY_MAX bytes are
 * errors (Postfix itself accepts socketmap replies up to 100000 bytes).  At
 * most KEYS_MAX keys of KEY_MAX bytes.  inet targets take IPv4 literals only.
 * The generator shares the machine with the server: on 2 CPUs it takes
 * about one of them at high rates.
 */
#define _GNU_SOURCE /* POSIX and Linux interfaces (epoll, strncasecmp) under -std=c11 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum {
    CONNS_MAX = 10000,
    THREADS_MAX = 256,
    KEYS_MAX = 1000000,
    KEY_MAX = 1000,      /* bytes of one key; an address is at most 254 */
    REPLY_MAX = 16384,   /* per connection; far above any answer Waypost gives */
    BUILTIN_KEYS = 4096, /* enough distinct keys that a server-side cache misses */
    EVENTS_PER_WAIT = 256,
    POLL_MS = 10,        /* how often a thread looks at the clock when idle */
    PRIME_EXTRA_S = 10,  /* longest wait for every connection's first reply */
    ERROR_TEXT_MAX = 80, /* bytes of a bad reply quoted in the error message */
};
#define NS_PER_S 1000000000ull
#define REQUESTS_BYTES_MAX ((size_t)64 << 20) /* all encoded requests together */
#define DRAIN_NS (2 * NS_PER_S)               /* wait for last replies after the window */

enum protocol { PROTO_SOCKETMAP, PROTO_POLICY, PROTO_TCP };
static const char *const protocol_names[] = {"socketmap", "policy", "tcp"};

enum reply_class { REPLY_FOUND, REPLY_NOTFOUND, REPLY_FAILED };

/*
 * Latency histogram, log-linear: values below 128 ns have a bucket each;
 * above, every power of two is split into 64 buckets, so a bucket is at most
 * 1/64 of its value wide and its midpoint is within 0.8 % of any sample in
 * it.  Samples are capped at 2^40 ns (18 minutes).
 */
enum {
    HIST_LINEAR = 128,
    HIST_SUB_BITS = 6,
    HIST_SUB = 1 << HIST_SUB_BITS,
    HIST_TOP_BIT = 40,
    HIST_BUCKETS = HIST_LINEAR + (HIST_TOP_BIT - 7) * HIST_SUB,
};

/* Encoded requests, back to back: request i is bytes[offsets[i] .. offsets[i + 1]). */
struct request_set {
    char *bytes;
    size_t used, capacity;
    size_t *offsets;
    size_t count;
};

struct connection {
    int fd;
    int id;
    bool done;     /* closed: the run ended for it, or it had an error */
    bool answered; /* has had at least one reply */
    bool waiting_to_write;
    unsigned long window_replies; /* replies counted in the window */
    const char *request;
    size_t request_len, request_sent;
    uint64_t sent_at_ns;
    size_t reply_len;
    char reply[REPLY_MAX];
};

struct load_thread {
    pthread_t thread;
    int epoll_fd;
    int index;  /* owns connections index, index + thread_count, ... */
    int active; /* its connections not yet done */
    size_t next_request;
    unsigned long counts[3]; /* by enum reply_class, inside the window */
    unsigned long errors;
    uint64_t max_ns;
    uint64_t histogram[HIST_BUCKETS];
};

/* Settings: written by main() before the threads start, read-only after. */
static enum protocol protocol;
static struct request_set requests;
static struct connection *connections;
static int connection_count = 1, thread_count;

/* Shared run state.  window_end_ns is stored before window_start_ns, so a
 * thread that sees a start also sees the end. */
static _Atomic uint64_t window_start_ns, window_end_ns;
static atomic_int connections_answered;
static atomic_int threads_running;
static atomic_flag error_reported = ATOMIC_FLAG_INIT;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void fail(const char *what)
{
    perror(what);
    exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen [-c CONNS] [-t THREADS] [-d SECONDS] [-w SECONDS] [-k KEYFILE]\n"
                    "               [-m MAP] [-a CLIENT_ADDRESS] [-f SENDER] TARGET\n"
                    "       TARGET = PROTO:unix:PATH | PROTO:inet:IPV4:PORT, PROTO = socketmap|policy|tcp\n");
    exit(2);
}

/* ----------------------------------------------------------------- requests */

static void request_bytes(struct request_set *set, const char *bytes, size_t len)
{
    if (set->used + len > set->capacity) {
        size_t capacity = set->capacity ? set->capacity : 1 << 16;
        while (capacity < set->used + len)
            capacity *= 2;
        if (capacity > REQUESTS_BYTES_MAX) {
            fprintf(stderr, "loadgen: the requests would take more than %zu MiB: use fewer keys\n",
                    REQUESTS_BYTES_MAX >> 20);
            exit(2);
        }
        set->bytes = realloc(set->bytes, capacity);
        if (!set->bytes)
            fail("realloc");
        set->capacity = capacity;
    }
    memcpy(set->bytes + set->used, bytes, len);
    set->used += len;
}

static void request_text(struct request_set *set, const char *text)
{
    request_bytes(set, text, strlen(text));
}

/* Postfix's tcp_table client encodes '%', white space and anything not
 * printable as %XX (hex_quote()), so the key stays on one line. */
static void request_tcp_key(struct request_set *set, const char *key)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        if (*p == '%' || *p <= ' ' || *p >= 127) {
            char quoted[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            request_bytes(set, quoted, 3);
        } else {
            request_bytes(set, (const char *)p, 1);
        }
    }
}

struct request_options {
    const char *map;
    const char *client_address;
    const char *sender;
};

static void add_request(struct request_set *set, const char *key, const struct request_options *o)
{
    if (set->count == KEYS_MAX) {
        fprintf(stderr, "loadgen: more than %d keys\n", KEYS_MAX);
        exit(2);
    }
    set->offsets[set->count++] = set->used;
    if (protocol == PROTO_SOCKETMAP) {
        char length[24];
        snprintf(length, sizeof(length), "%zu:", strlen(o->map) + 1 + strlen(key));
        request_text(set, length);
        request_text(set, o->map);
        request_text(set, " ");
        request_text(set, key);
        request_text(set, ",");
    } else if (protocol == PROTO_TCP) {
        request_text(set, "get ");
        request_tcp_key(set, key);
        request_text(set, "\n");
    } else {
        /* Postfix 3.7 smtpd's attributes at RCPT, in its order, for an
         * unauthenticated client over TLS 1.3 (SMTPD_POLICY_README).  The
         * queue id is empty: smtpd opens the queue file after the first
         * accepted recipient. */
        request_text(set, "request=smtpd_access_policy\n"
                          "protocol_state=RCPT\n"
                          "protocol_name=ESMTP\n"
                          "helo_name=mail.sender.example\n"
                          "queue_id=\n"
                          "sender=");
        request_text(set, o->sender);
        request_text(set, "\nrecipient=");
        request_text(set, key);
        request_text(set, "\nrecipient_count=0\n"
                          "client_address=");
        request_text(set, o->client_address);
        request_text(set, "\nclient_name=mail.sender.example\n"
                          "reverse_client_name=mail.sender.example\n"
                          "instance=1a2b.67d1c3e4.5f6a7.0\n"
                          "sasl_method=\n"
                          "sasl_username=\n"
                          "sasl_sender=\n"
                          "size=12345\n"
                          "ccert_subject=\n"
                          "ccert_issuer=\n"
                          "ccert_fingerprint=\n"
                          "encryption_protocol=TLSv1.3\n"
                          "encryption_cipher=TLS_AES_256_GCM_SHA384\n"
                          "encryption_keysize=256\n"
                          "etrn_domain=\n"
                          "stress=\n"
                          "ccert_pubkey_fingerprint=\n"
                          "client_port=54321\n"
                          "policy_context=\n"
                          "server_address=192.0.2.25\n"
                          "server_port=25\n"
                          "\n");
    }
}

static void build_requests(const char *key_file, const struct request_options *o)
{
    requests.offsets = malloc(((size_t)KEYS_MAX + 1) * sizeof(*requests.offsets));
    if (!requests.offsets)
        fail("malloc");
    if (!key_file) {
        char key[64];
        for (int i = 0; i < BUILTIN_KEYS; i++) {
            snprintf(key, sizeof(key), "user%d@example.net", i);
            add_request(&requests, key, o);
        }
    } else {
        FILE *f = fopen(key_file, "r");
        if (!f)
            fail(key_file);
        char line[KEY_MAX + 2];
        unsigned long line_number = 0;
        while (fgets(line, sizeof(line), f)) {
            line_number++;
            size_t len = strlen(line);
            if (len > 0 && line[len - 1] == '\n')
                line[--len] = '\0';
            else if (!feof(f)) {
                fprintf(stderr, "loadgen: %s:%lu: key longer than %d bytes\n", key_file, line_number,
                        KEY_MAX);
                exit(2);
            }
            if (len > 0 && line[len - 1] == '\r')
                line[--len] = '\0';
            if (memchr(line, '\0', len) || len == 0)
                continue; /* empty lines (and NUL bytes, which no protocol carries) */
            add_request(&requests, line, o);
        }
        fclose(f);
        if (requests.count == 0) {
            fprintf(stderr, "loadgen: %s: no keys\n", key_file);
            exit(2);
        }
    }
    requests.offsets[requests.count] = requests.used;
}

/* -------------------------------------------------------------------- replies */

static bool starts_with(const char *bytes, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(bytes, prefix, n) == 0;
}

/*
 * Length of the complete reply at the start of `in`, 0 if more bytes are
 * needed, -1 if the bytes break the protocol (*why says how).
 */
static long parse_reply(const char *in, size_t len, enum reply_class *class, const char **why)
{
    if (protocol == PROTO_SOCKETMAP) {
        size_t digits = 0, payload_len = 0;
        while (digits < len && in[digits] >= '0' && in[digits] <= '9') {
            payload_len = payload_len * 10 + (size_t)(in[digits] - '0');
            if (++digits > 6) { /* Postfix's own limit is 100000 bytes */
                *why = "netstring length over 6 digits";
                return -1;
            }
        }
        if (digits == len)
            return 0;
        if (digits == 0 || in[digits] != ':') {
            *why = "not a netstring";
            return -1;
        }
        size_t total = digits + 1 + payload_len + 1;
        if (total > REPLY_MAX) {
            *why = "reply longer than the generator's buffer";
            return -1;
        }
        if (len < total)
            return 0;
        if (in[total - 1] != ',') {
            *why = "netstring not ended by ','";
            return -1;
        }
        const char *payload = in + digits + 1;
        if (starts_with(payload, payload_len, "OK ") && payload_len > 3)
            *class = REPLY_FOUND;
        else if (starts_with(payload, payload_len, "NOTFOUND "))
            *class = REPLY_NOTFOUND;
        else if (starts_with(payload, payload_len, "TEMP ") ||
                 starts_with(payload, payload_len, "TIMEOUT ") || starts_with(payload, payload_len, "PERM "))
            *class = REPLY_FAILED;
        else if (starts_with(payload, payload_len, "OK")) {
            *why = "OK without a value";
            return -1;
        } else {
            *why = "not OK <value>, NOTFOUND , TEMP, TIMEOUT or PERM";
            return -1;
        }
        return (long)total;
    }
    if (protocol == PROTO_TCP) {
        const char *newline = memchr(in, '\n', len);
        if (!newline)
            return 0;
        size_t line_len = (size_t)(newline - in);
        if (starts_with(in, line_len, "200 "))
            *class = REPLY_FOUND;
        else if (starts_with(in, line_len, "500 "))
            *class = REPLY_NOTFOUND;
        else if (starts_with(in, line_len, "400 "))
            *class = REPLY_FAILED;
        else {
            *why = "not 200, 400 or 500 and a space";
            return -1;
        }
        return (long)line_len + 1;
    }
    /* Policy: exactly one "action=..." line, then an empty line. */
    if (memcmp(in, "action=", len < 7 ? len : 7) != 0) {
        *why = "does not start with action=";
        return -1;
    }
    const char *newline = memchr(in, '\n', len);
    if (!newline)
        return 0;
    size_t line_len = (size_t)(newline - in);
    if (line_len < 8) {
        *why = "empty action";
        return -1;
    }
    if (len == line_len + 1)
        return 0;
    if (in[line_len + 1] != '\n') {
        *why = "more than one line before the empty line";
        return -1;
    }
    const char *action = in + 7;
    size_t action_len = line_len - 7;
    bool dunno = action_len >= 5 && strncasecmp(action, "DUNNO", 5) == 0 &&
                 (action_len == 5 || action[5] == ' ' || action[5] == '\t');
    *class = dunno ? REPLY_NOTFOUND : REPLY_FOUND;
    return (long)line_len + 2;
}

/* ------------------------------------------------------------------ threads */

static size_t histogram_index(uint64_t ns)
{
    if (ns < HIST_LINEAR)
        return (size_t)ns;
    if (ns >= (uint64_t)1 << HIST_TOP_BIT)
        ns = ((uint64_t)1 << HIST_TOP_BIT) - 1;
    int top = 63 - __builtin_clzll(ns); /* 7 .. HIST_TOP_BIT - 1 */
    int shift = top - HIST_SUB_BITS;
    return HIST_LINEAR + (size_t)(top - 7) * HIST_SUB + (size_t)((ns >> shift) - HIST_SUB);
}

/* The middle of bucket `index`, in ns. */
static double histogram_value(size_t index)
{
    if (index < HIST_LINEAR)
        return (double)index;
    size_t group = (index - HIST_LINEAR) / HIST_SUB, sub = (index - HIST_LINEAR) % HIST_SUB;
    int shift = (int)group + 7 - HIST_SUB_BITS;
    double low = (double)((HIST_SUB + sub) << shift);
    return low + (double)((uint64_t)1 << shift) / 2.0;
}

static void finish(struct load_thread *t, struct connection *c)
{
    epoll_ctl(t->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->done = true;
    t->active--;
}

/* Count an error, explain the first one of the run, and give up the connection. */
static void connection_error(struct load_thread *t, struct connection *c, const char *fmt, ...)
{
    t->errors++;
    if (!atomic_flag_test_and_set(&error_reported)) {
        char message[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);
        char quoted[ERROR_TEXT_MAX * 2 + 1];
        size_t q = 0;
        for (size_t i = 0; i < c->reply_len && i < ERROR_TEXT_MAX; i++) {
            char ch = c->reply[i];
            if (ch == '\n') {
                quoted[q++] = '\\';
                quoted[q++] = 'n';
            } else {
                quoted[q++] = (ch >= ' ' && ch < 127) ? ch : '?';
            }
        }
        quoted[q] = '\0';
        fprintf(stderr, "loadgen: connection %d: %s%s%s%s (further errors are only counted)\n", c->id,
                message, c->reply_len ? ": \"" : "", quoted, c->reply_len ? "\"" : "");
    }
    finish(t, c);
}

static void watch(struct load_thread *t, struct connection *c, bool for_writing)
{
    struct epoll_event ev = {.events = EPOLLIN | (for_writing ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(t->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        fail("epoll_ctl");
    c->waiting_to_write = for_writing;
}

/* Write the rest of the current request; false on a write error. */
static bool continue_sending(struct load_thread *t, struct connection *c)
{
    while (c->request_sent < c->request_len) {
        ssize_t n = write(c->fd, c->request + c->request_sent, c->request_len - c->request_sent);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                if (!c->waiting_to_write)
                    watch(t, c, true);
                return true;
            }
            return false;
        }
        c->request_sent += (size_t)n;
    }
    if (c->waiting_to_write)
        watch(t, c, false);
    return true;
}

static void send_next(struct load_thread *t, struct connection *c)
{
    size_t i = t->next_request++ % requests.count;
    c->request = requests.bytes + requests.offsets[i];
    c->request_len = requests.offsets[i + 1] - requests.offsets[i];
    c->request_sent = 0;
    c->sent_at_ns = now_ns();
    if (!continue_sending(t, c))
        connection_error(t, c, "write: %s", strerror(errno));
}

static void on_reply_bytes(struct load_thread *t, struct connection *c)
{
    ssize_t n = read(c->fd, c->reply + c->reply_len, REPLY_MAX - c->reply_len);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            connection_error(t, c, "read: %s", strerror(errno));
        return;
    }
    if (n == 0) {
        connection_error(t, c, "the server closed the connection");
        return;
    }
    c->reply_len += (size_t)n;
    enum reply_class class = REPLY_FAILED;
    const char *why = NULL;
    long reply_len = parse_reply(c->reply, c->reply_len, &class, &why);
    if (reply_len == 0) {
        if (c->reply_len == REPLY_MAX)
            connection_error(t, c, "reply longer than %d bytes", REPLY_MAX);
        return;
    }
    if (reply_len < 0) {
        connection_error(t, c, "bad reply (%s)", why);
        return;
    }
    if ((size_t)reply_len != c->reply_len) {
        connection_error(t, c, "bytes after the reply, though one request was outstanding");
        return;
    }
    if (c->request_sent < c->request_len) {
        connection_error(t, c, "reply before the whole request was sent");
        return;
    }
    uint64_t done_at = now_ns();
    if (!c->answered) {
        c->answered = true;
        atomic_fetch_add(&connections_answered, 1);
    }
    uint64_t start = atomic_load(&window_start_ns);
    uint64_t end = start ? atomic_load(&window_end_ns) : 0;
    if (start && done_at >= start && done_at < end) {
        uint64_t latency = done_at - c->sent_at_ns;
        t->histogram[histogram_index(latency)]++;
        if (latency > t->max_ns)
            t->max_ns = latency;
        t->counts[class]++;
        c->window_replies++;
    }
    c->reply_len = 0;
    if (end && done_at >= end)
        finish(t, c); /* the run is over for this connection */
    else
        send_next(t, c);
}

static void *thread_main(void *arg)
{
    struct load_thread *t = arg;
    /* Threads start at different places in the key set, so that together
     * they cover it evenly even in a short run. */
    t->next_request = requests.count * (size_t)t->index / (size_t)thread_count;
    for (int i = t->index; i < connection_count; i += thread_count) {
        struct connection *c = &connections[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            fail("epoll_ctl");
        t->active++;
    }
    for (int i = t->index; i < connection_count; i += thread_count)
        send_next(t, &connections[i]);

    struct epoll_event events[EVENTS_PER_WAIT];
    while (t->active > 0) {
        int n = epoll_wait(t->epoll_fd, events, EVENTS_PER_WAIT, POLL_MS);
        if (n < 0 && errno != EINTR)
            fail("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct connection *c = events[i].data.ptr;
            if (!c->done && (events[i].events & EPOLLOUT) && !continue_sending(t, c))
                connection_error(t, c, "write: %s", strerror(errno));
            if (!c->done && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                on_reply_bytes(t, c);
        }
        uint64_t end = atomic_load(&window_end_ns);
        if (end && now_ns() > end + DRAIN_NS) {
            for (int i = t->index; i < connection_count; i += thread_count)
                if (!connections[i].done)
                    connection_error(t, &connections[i], "no reply within %.0f s after the end",
                                     (double)DRAIN_NS / NS_PER_S);
        }
    }
    atomic_fetch_sub(&threads_running, 1);
    return NULL;
}

/* --------------------------------------------------------------------- main */

struct target {
    bool is_unix;
    struct sockaddr_un unix_address;
    struct sockaddr_in inet_address;
};

static bool parse_target(const char *spec, struct target *target)
{
    const char *colon = strchr(spec, ':');
    if (!colon)
        return false;
    bool known = false;
    for (size_t p = 0; p < sizeof(protocol_names) / sizeof(protocol_names[0]); p++) {
        if (strlen(protocol_names[p]) == (size_t)(colon - spec) &&
            memcmp(spec, protocol_names[p], (size_t)(colon - spec)) == 0) {
            protocol = (enum protocol)p;
            known = true;
        }
    }
    if (!known)
        return false;
    const char *endpoint = colon + 1;
    memset(target, 0, sizeof(*target));
    if (strncmp(endpoint, "unix:", 5) == 0) {
        const char *path = endpoint + 5;
        if (!*path || strlen(path) >= sizeof(target->unix_address.sun_path))
            return false;
        target->is_unix = true;
        target->unix_address.sun_family = AF_UNIX;
        memcpy(target->unix_address.sun_path, path, strlen(path) + 1);
        return true;
    }
    if (strncmp(endpoint, "inet:", 5) != 0)
        return false;
    const char *host = endpoint + 5;
    const char *port_colon = strrchr(host, ':');
    char address[INET_ADDRSTRLEN];
    if (!port_colon || (size_t)(port_colon - host) >= sizeof(address))
        return false;
    memcpy(address, host, (size_t)(port_colon - host));
    address[port_colon - host] = '\0';
    char *end;
    long port = strtol(port_colon + 1, &end, 10);
    if (!port_colon[1] || *end || port < 1 || port > 65535)
        return false;
    target->inet_address.sin_family = AF_INET;
    target->inet_address.sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, address, &target->inet_address.sin_addr) == 1;
}

static int connect_target(const struct target *target, const char *spec)
{
    int fd = socket(target->is_unix ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail("socket");
    int rc = target->is_unix
                 ? connect(fd, (const struct sockaddr *)&target->unix_address, sizeof(target->unix_address))
                 : connect(fd, (const struct sockaddr *)&target->inet_address, sizeof(target->inet_address));
    if (rc < 0) {
        fprintf(stderr, "loadgen: cannot connect to %s: %s\n", spec, strerror(errno));
        exit(1);
    }
    if (!target->is_unix) {
        int one = 1; /* each request is one write: send it now */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        fail("fcntl");
    return fd;
}

/* Machine-wide busy and own CPU time, in seconds. */
static double machine_busy_s(void)
{
    unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    int fields = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &system, &idle,
                        &iowait, &irq, &softirq, &steal);
    fclose(f);
    if (fields != 8)
        return 0;
    return (double)(user + nice + system + irq + softirq + steal) / (double)sysconf(_SC_CLK_TCK);
}

static double own_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static void sleep_s(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* A value that goes on one line of a request and must not break it. */
static bool clean_value(const char *value, bool allow_space)
{
    for (const char *p = value; *p; p++)
        if (*p == '\n' || *p == '\r' || (!allow_space && *p == ' '))
            return false;
    return true;
}

int main(int argc, char **argv)
{
    double duration_s = 5.0, warmup_s = 1.0;
    const char *key_file = NULL;
    struct request_options o = {"transport", "198.51.100.77", "sender@sender.example"};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int opt;
    while ((opt = getopt(argc, argv, "c:t:d:w:k:m:a:f:")) != -1) {
        switch (opt) {
        case 'c': connection_count = atoi(optarg); break;
        case 't': thread_count = atoi(optarg); break;
        case 'd': duration_s = atof(optarg); break;
        case 'w': warmup_s = atof(optarg); break;
        case 'k': key_file = optarg; break;
        case 'm': o.map = optarg; break;
        case 'a': o.client_address = optarg; break;
        case 'f': o.sender = optarg; break;
        default: usage();
        }
    }
    if (optind != argc - 1 || connection_count < 1 || connection_count > CONNS_MAX || thread_count < 0 ||
        thread_count > THREADS_MAX || !(duration_s > 0 && duration_s <= 3600) ||
        !(warmup_s >= 0 && warmup_s <= 3600))
        usage();
    if (!*o.map || !clean_value(o.map, false) || !clean_value(o.client_address, false) ||
        !clean_value(o.sender, false)) {
        fprintf(stderr, "loadgen: -m, -a and -f take one word\n");
        return 2;
    }
    const char *target_spec = argv[optind];
    struct target target;
    if (!parse_target(target_spec, &target)) {
        fprintf(stderr, "loadgen: %s: expected PROTO:unix:PATH or PROTO:inet:IPV4:PORT\n", target_spec);
        return 2;
    }
    if (thread_count == 0)
        thread_count = cpus > 0 ? (int)cpus : 1;
    if (thread_count > connection_count)
        thread_count = connection_count;
    signal(SIGPIPE, SIG_IGN); /* a server that hangs up is an error to count, not a reason to die */

    build_requests(key_file, &o);

    connections = calloc((size_t)connection_count, sizeof(*connections));
    struct load_thread *threads = calloc((size_t)thread_count, sizeof(*threads));
    if (!connections || !threads)
        fail("calloc");
    for (int i = 0; i < connection_count; i++) {
        connections[i].id = i;
        connections[i].fd = connect_target(&target, target_spec);
    }
    uint64_t started = now_ns();
    atomic_store(&threads_running, thread_count);
    for (int i = 0; i < thread_count; i++) {
        threads[i].index = i;
        threads[i].epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (threads[i].epoll_fd < 0)
            fail("epoll_create1");
        if (pthread_create(&threads[i].thread, NULL, thread_main, &threads[i]) != 0)
            fail("pthread_create");
    }

    /* Warm up: the time asked for, and until every connection has been
     * answered once, within limits. */
    for (;;) {
        double elapsed = (double)(now_ns() - started) / NS_PER_S;
        if (elapsed >= warmup_s && atomic_load(&connections_answered) == connection_count)
            break;
        if (elapsed >= warmup_s + PRIME_EXTRA_S || atomic_load(&threads_running) == 0)
            break;
        sleep_s(0.002);
    }
    int unanswered = connection_count - atomic_load(&connections_answered);
    double busy_before = machine_busy_s(), own_before = own_cpu_s();
    uint64_t start = now_ns(), end = start + (uint64_t)(duration_s * NS_PER_S);
    double warmed_s = (double)(start - started) / NS_PER_S;
    atomic_store(&window_end_ns, end);
    atomic_store(&window_start_ns, start);
    while (now_ns() < end && atomic_load(&threads_running) > 0)
        sleep_s(0.005);
    double busy_s = machine_busy_s() - busy_before, own_s = own_cpu_s() - own_before;
    for (int i = 0; i < thread_count; i++)
        pthread_join(threads[i].thread, NULL);

    static uint64_t histogram[HIST_BUCKETS];
    unsigned long counts[3] = {0, 0, 0}, errors = 0;
    uint64_t max_ns = 0;
    for (int i = 0; i < thread_count; i++) {
        for (size_t b = 0; b < HIST_BUCKETS; b++)
            histogram[b] += threads[i].histogram[b];
        for (int k = 0; k < 3; k++)
            counts[k] += threads[i].counts[k];
        errors += threads[i].errors;
        if (threads[i].max_ns > max_ns)
            max_ns = threads[i].max_ns;
    }
    unsigned long total = counts[0] + counts[1] + counts[2];
    int starved = 0;
    for (int i = 0; i < connection_count; i++)
        starved += connections[i].window_replies == 0;
    double percentile_us[2] = {0, 0};
    const double fractions[2] = {0.50, 0.99};
    for (int p = 0; p < 2 && total > 0; p++) {
        /* The smallest bucket holding the ceil(f * total)-th sample. */
        uint64_t rank = (uint64_t)(fractions[p] * (double)total + 0.999999), seen = 0;
        for (size_t b = 0; b < HIST_BUCKETS; b++) {
            seen += histogram[b];
            if (seen >= rank) {
                percentile_us[p] = histogram_value(b) / 1000.0;
                break;
            }
        }
    }
    printf("proto=%s conns=%d threads=%d requests=%lu seconds=%.2f rps=%.0f p50_us=%.1f p99_us=%.1f "
           "max_us=%.1f errors=%lu found=%lu notfound=%lu failed=%lu server_cpu_us=%.1f warmup_s=%.2f "
           "unanswered=%d starved=%d\n",
           protocol_names[protocol], connection_count, thread_count, total, duration_s,
           (double)total / duration_s, percentile_us[0], percentile_us[1], (double)max_ns / 1000.0, errors,
           counts[REPLY_FOUND], counts[REPLY_NOTFOUND], counts[REPLY_FAILED],
           total ? (busy_s - own_s) * 1e6 / (double)total : 0.0, warmed_s, unanswered, starved);
    for (int i = 0; i < thread_count; i++)
        close(threads[i].epoll_fd);
    free(threads);
    free(connections);
    free(requests.bytes);
    free(requests.offsets);
    return (total > 0 && errors == 0) ? 0 : 1;
}
