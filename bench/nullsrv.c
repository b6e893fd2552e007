/* SPDX-License-Identifier: MIT */
/*
 * nullsrv - a "null responder" for the Postfix lookup protocols Waypost
 * serves.  It answers every request at once and looks nothing up, so a load
 * generator run against it measures only the protocol, the kernel and the
 * scheduler: the ceiling that any real daemon on the same machine can reach.
 *
 *   nullsrv [-t THREADS] [-n] [-u] LISTENER...
 *   LISTENER = PROTO:unix:PATH | PROTO:inet:IPV4:PORT
 *   PROTO    = socketmap | policy | tcp
 *
 * Answers (the key is echoed because a found answer must carry a value):
 *   socketmap  "<len>:<name> <key>,"      -> "<len>:OK <key>,"   -n: "9:NOTFOUND ,"
 *   tcp        "get <%XX-encoded key>\n"  -> "200 <key>\n"       -n: "500 not found\n"
 *   policy     "name=value\n" ... "\n"    -> "action=DUNNO\n\n"
 *
 * Model: the main thread accepts on every listener and hands each new
 * connection, round-robin, to one of THREADS workers (default: one per
 * online CPU).  Each worker owns an epoll set and does all the I/O of its
 * connections.  Unix and inet listeners use the same path through the code,
 * so their numbers compare directly.  By default each answer is written as
 * soon as it is formed; with -u the answers of one epoll_wait() pass go out
 * together in one io_uring submission (policy/sendbatch.c), as
 * waypost-policyd sends them, so that a benchmark can take the faster of
 * the two as the ceiling.
 *
 * Limits: it answers without looking anything up (that is the point), so it
 * says nothing about lookup cost.  A request over REQUEST_MAX bytes, or one
 * that breaks the framing, closes the connection, as a Postfix server would
 * do with a client it cannot understand.  inet listeners take IPv4 literals
 * only.  SIGINT or SIGTERM removes its unix sockets and exits.
 */
#define _GNU_SOURCE /* accept4, memmem, signalfd under -std=c11 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "policy/sendbatch.h"

enum {
    /* Larger than Postfix's socketmap query limit (10000 bytes) and than any
     * policy request Postfix sends, so real traffic never hits it. */
    REQUEST_MAX = 16384,
    /* Room for several pipelined replies; the largest single reply is the
     * echoed key plus a few bytes, so one always fits in an empty buffer. */
    OUTPUT_MAX = 2 * REQUEST_MAX,
    REPLY_OVERHEAD_MAX = 32, /* "<len>:OK " ... "," or "200 " ... "\n" */
    LISTENERS_MAX = 16,
    THREADS_MAX = 256,
    EVENTS_PER_WAIT = 256,
};

enum protocol { PROTO_SOCKETMAP, PROTO_POLICY, PROTO_TCP };

static const char *const protocol_names[] = {"socketmap", "policy", "tcp"};

struct listener {
    enum protocol protocol;
    int fd;
    char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* empty for inet */
    const char *spec;                                            /* as given, for messages */
};

struct connection {
    int fd;
    enum protocol protocol;
    bool waiting_to_write; /* epoll watches EPOLLOUT instead of EPOLLIN */
    size_t input_len;
    size_t output_len, output_sent;
    char input[REQUEST_MAX];
    char output[OUTPUT_MAX];
};

struct worker {
    int epoll_fd;
    pthread_t thread;
    struct wp_sendbatch *batch; /* -u: the answers of one pass; NULL: write each at once */
};

/* Set once in main() before any worker starts; read-only afterwards. */
static bool answer_not_found;
static bool batch_sends;
static struct listener listeners[LISTENERS_MAX];
static int listener_count;

static void fail(const char *what)
{
    perror(what);
    exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: nullsrv [-t THREADS] [-n] [-u] LISTENER...\n"
                    "       LISTENER = PROTO:unix:PATH | PROTO:inet:IPV4:PORT, PROTO = socketmap|policy|tcp\n"
                    "       -n: socketmap answers NOTFOUND and tcp answers 500 instead of echoing the key\n"
                    "       -u: send the answers of one pass in one io_uring submission\n");
    exit(2);
}

/* ------------------------------------------------------------------ answers */

static void append_output(struct connection *c, const char *bytes, size_t len)
{
    /* Callers reserve room first (see answer_requests), so this cannot overflow. */
    memcpy(c->output + c->output_len, bytes, len);
    c->output_len += len;
}

/*
 * Length of the complete request at the start of `in`, 0 if more bytes are
 * needed, -1 if the bytes cannot be a request.  For socketmap and tcp, *key
 * and *key_len point at the key inside the request.
 */
static long complete_request(enum protocol protocol, const char *in, size_t len, const char **key,
                             size_t *key_len)
{
    if (protocol == PROTO_SOCKETMAP) {
        size_t digits = 0, payload_len = 0;
        while (digits < len && in[digits] >= '0' && in[digits] <= '9') {
            payload_len = payload_len * 10 + (size_t)(in[digits] - '0');
            if (++digits > 5) /* REQUEST_MAX has 5 digits */
                return -1;
        }
        if (digits == len)
            return 0;
        if (digits == 0 || in[digits] != ':' || payload_len + digits + 2 > REQUEST_MAX)
            return -1;
        size_t total = digits + 1 + payload_len + 1;
        if (len < total)
            return 0;
        if (in[total - 1] != ',')
            return -1;
        const char *payload = in + digits + 1;
        const char *space = memchr(payload, ' ', payload_len);
        if (!space || space == payload)
            return -1;
        *key = space + 1;
        *key_len = payload_len - (size_t)(*key - payload);
        return (long)total;
    }
    if (protocol == PROTO_TCP) {
        const char *newline = memchr(in, '\n', len);
        if (!newline)
            return 0;
        size_t line_len = (size_t)(newline - in);
        if (line_len < 4 || memcmp(in, "get ", 4) != 0)
            return -1;
        *key = in + 4;
        *key_len = line_len - 4;
        return (long)line_len + 1;
    }
    /* Policy: attribute lines, then an empty line.  An empty line first
     * would be a request without attributes, which Postfix never sends. */
    if (len > 0 && in[0] == '\n')
        return -1;
    const char *end = memmem(in, len, "\n\n", 2);
    if (!end)
        return 0;
    *key = NULL;
    *key_len = 0;
    return (long)(end - in) + 2;
}

static void append_answer(struct connection *c, const char *key, size_t key_len)
{
    /* An empty key still gets a non-empty value: Postfix may take a bare
     * "OK" for "not found". */
    if (key_len == 0) {
        key = "-";
        key_len = 1;
    }
    if (c->protocol == PROTO_SOCKETMAP) {
        if (answer_not_found) {
            append_output(c, "9:NOTFOUND ,", 12);
            return;
        }
        char header[24];
        int n = snprintf(header, sizeof(header), "%zu:OK ", key_len + 3);
        append_output(c, header, (size_t)n);
        append_output(c, key, key_len);
        append_output(c, ",", 1);
    } else if (c->protocol == PROTO_TCP) {
        if (answer_not_found) {
            append_output(c, "500 not found\n", 14);
            return;
        }
        append_output(c, "200 ", 4); /* the key is already %XX-encoded, as a value must be */
        append_output(c, key, key_len);
        append_output(c, "\n", 1);
    } else {
        append_output(c, "action=DUNNO\n\n", 14);
    }
}

/*
 * Answer every complete request in the input buffer while the output buffer
 * has room; whatever is left waits for the next call.  Returns false on a
 * request that breaks the framing.
 */
static bool answer_requests(struct connection *c)
{
    size_t used = 0;
    while (used < c->input_len) {
        const char *key = NULL;
        size_t key_len = 0;
        long request_len =
            complete_request(c->protocol, c->input + used, c->input_len - used, &key, &key_len);
        if (request_len < 0)
            return false;
        if (request_len == 0)
            break;
        if (OUTPUT_MAX - c->output_len < key_len + REPLY_OVERHEAD_MAX)
            break; /* the reply would not fit: flush first */
        append_answer(c, key, key_len);
        used += (size_t)request_len;
    }
    if (used > 0) {
        memmove(c->input, c->input + used, c->input_len - used);
        c->input_len -= used;
    }
    /* A full buffer holding no complete request can never complete one. */
    if (c->input_len == REQUEST_MAX && c->output_len == 0)
        return false;
    return true;
}

/* ------------------------------------------------------------------ workers */

static void watch(struct worker *w, struct connection *c, bool for_writing)
{
    struct epoll_event ev = {.events = for_writing ? EPOLLOUT : EPOLLIN, .data.ptr = c};
    if (epoll_ctl(w->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        fail("epoll_ctl");
    c->waiting_to_write = for_writing;
}

static void close_connection(struct worker *w, struct connection *c)
{
    epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Write what is pending; false if the peer is gone. */
static bool flush_output(struct connection *c)
{
    while (c->output_sent < c->output_len) {
        ssize_t n = write(c->fd, c->output + c->output_sent, c->output_len - c->output_sent);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return true;
            return false;
        }
        c->output_sent += (size_t)n;
    }
    c->output_len = c->output_sent = 0;
    return true;
}

/*
 * Answer, flush, and choose what to wait for next.  While output is pending
 * we stop reading, so a client that sends without reading cannot make us
 * buffer without bound.
 */
static bool serve(struct worker *w, struct connection *c)
{
    for (;;) {
        if (!answer_requests(c) || !flush_output(c))
            return false;
        if (c->output_len > 0) {
            if (!c->waiting_to_write)
                watch(w, c, true);
            return true;
        }
        /* Output drained: requests held back for lack of room may remain. */
        const char *key;
        size_t key_len;
        if (c->input_len == 0 || complete_request(c->protocol, c->input, c->input_len, &key, &key_len) == 0)
            break;
    }
    if (c->waiting_to_write)
        watch(w, c, false);
    return true;
}

static bool on_readable(struct connection *c)
{
    /* One read per readiness event: epoll is level-triggered and will report
     * the rest, and a second read would usually just return EAGAIN. */
    ssize_t n = read(c->fd, c->input + c->input_len, REQUEST_MAX - c->input_len);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR;
    if (n == 0)
        return false; /* peer closed */
    c->input_len += (size_t)n;
    return true;
}

/* -u: the fate of one batched answer (see sendbatch.h); the rest goes the
 * usual way. */
struct batched {
    struct worker *w;
    struct connection *c;
};

static void batch_sent(void *arg, ssize_t result)
{
    struct batched *b = arg;
    if (result > 0)
        b->c->output_sent += (size_t)result;
    else if (result != -EAGAIN) {
        close_connection(b->w, b->c);
        return;
    }
    if (!serve(b->w, b->c))
        close_connection(b->w, b->c);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event events[EVENTS_PER_WAIT];
    struct batched batched[EVENTS_PER_WAIT];
    _Static_assert(EVENTS_PER_WAIT <= WP_SENDBATCH_MAX, "one pass fits one batch");
    for (;;) {
        int n = epoll_wait(w->epoll_fd, events, EVENTS_PER_WAIT, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct connection *c = events[i].data.ptr;
            bool alive = true;
            if (!c->waiting_to_write && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                alive = on_readable(c);
            if (alive && w->batch && !c->waiting_to_write) {
                /* Answer now, send at the end of the pass. */
                alive = answer_requests(c);
                if (alive && c->output_len > c->output_sent) {
                    struct batched *b = &batched[w->batch->n];
                    *b = (struct batched){w, c};
                    wp_sendbatch_add(w->batch, c->fd, c->output + c->output_sent,
                                     c->output_len - c->output_sent, b);
                    continue;
                }
            }
            if (alive)
                alive = serve(w, c);
            if (!alive)
                close_connection(w, c);
        }
        if (w->batch)
            wp_sendbatch_run(w->batch, batch_sent);
    }
    return NULL;
}

/* ---------------------------------------------------------------- listeners */

static bool parse_port(const char *text, uint16_t *port)
{
    char *end;
    long value = strtol(text, &end, 10);
    if (!*text || *end || value < 1 || value > 65535)
        return false;
    *port = (uint16_t)value;
    return true;
}

static void open_listener(const char *spec, struct listener *l)
{
    const char *colon = strchr(spec, ':');
    bool known = false;
    for (int p = 0; colon && p < (int)(sizeof(protocol_names) / sizeof(protocol_names[0])); p++) {
        if (strlen(protocol_names[p]) == (size_t)(colon - spec) &&
            memcmp(spec, protocol_names[p], (size_t)(colon - spec)) == 0) {
            l->protocol = (enum protocol)p;
            known = true;
        }
    }
    if (!known) {
        fprintf(stderr, "nullsrv: %s: expected socketmap:, policy: or tcp: first\n", spec);
        exit(2);
    }
    l->spec = spec;
    const char *endpoint = colon + 1;
    if (strncmp(endpoint, "unix:", 5) == 0) {
        const char *path = endpoint + 5;
        if (!*path || strlen(path) >= sizeof(l->unix_path)) {
            fprintf(stderr, "nullsrv: %s: empty or too long unix socket path\n", spec);
            exit(2);
        }
        /* Replace a stale socket from an earlier run, but never another file. */
        struct stat st;
        if (lstat(path, &st) == 0) {
            if (!S_ISSOCK(st.st_mode)) {
                fprintf(stderr, "nullsrv: %s exists and is not a socket\n", path);
                exit(1);
            }
            unlink(path);
        }
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        memcpy(sa.sun_path, path, strlen(path) + 1);
        l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (l->fd < 0)
            fail("socket");
        if (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            fail(path);
        memcpy(l->unix_path, path, strlen(path) + 1);
    } else if (strncmp(endpoint, "inet:", 5) == 0) {
        const char *host = endpoint + 5;
        const char *port_colon = strrchr(host, ':');
        char address[INET_ADDRSTRLEN];
        struct sockaddr_in sa = {.sin_family = AF_INET};
        if (!port_colon || (size_t)(port_colon - host) >= sizeof(address)) {
            fprintf(stderr, "nullsrv: %s: expected inet:IPV4:PORT\n", spec);
            exit(2);
        }
        memcpy(address, host, (size_t)(port_colon - host));
        address[port_colon - host] = '\0';
        if (inet_pton(AF_INET, address, &sa.sin_addr) != 1 || !parse_port(port_colon + 1, &sa.sin_port)) {
            fprintf(stderr, "nullsrv: %s: expected inet:IPV4:PORT\n", spec);
            exit(2);
        }
        sa.sin_port = htons(sa.sin_port);
        l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (l->fd < 0)
            fail("socket");
        int one = 1;
        setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* restart without waiting */
        if (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            fail(spec);
    } else {
        fprintf(stderr, "nullsrv: %s: expected PROTO:unix:PATH or PROTO:inet:IPV4:PORT\n", spec);
        exit(2);
    }
    /* A deep backlog: a benchmark opens all its connections at once. */
    if (listen(l->fd, 1024) < 0)
        fail("listen");
}

static void remove_unix_sockets(void)
{
    for (int i = 0; i < listener_count; i++)
        if (listeners[i].unix_path[0])
            unlink(listeners[i].unix_path);
}

/* Hand a new connection to the next worker in turn. */
static void accept_connection(const struct listener *l, struct worker *workers, int worker_count,
                              unsigned *next_worker)
{
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return; /* the client gave up, or we are out of descriptors: keep serving the others */
    if (l->unix_path[0] == '\0') {
        int one = 1; /* replies are single writes; do not let Nagle hold them */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    struct connection *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->protocol = l->protocol;
    struct worker *w = &workers[(*next_worker)++ % (unsigned)worker_count];
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        free(c);
    }
}

int main(int argc, char **argv)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int worker_count = cpus > 0 ? (int)cpus : 1;
    int opt;
    while ((opt = getopt(argc, argv, "t:nu")) != -1) {
        switch (opt) {
        case 't': worker_count = atoi(optarg); break;
        case 'n': answer_not_found = true; break;
        case 'u': batch_sends = true; break;
        default: usage();
        }
    }
    if (optind == argc || argc - optind > LISTENERS_MAX || worker_count < 1 || worker_count > THREADS_MAX)
        usage();

    /* Signals are taken synchronously through a signalfd in the accept loop,
     * so the mask must be set before any thread inherits it. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &stop_signals, NULL) != 0)
        fail("pthread_sigmask");
    int signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
    if (signal_fd < 0)
        fail("signalfd");
    signal(SIGPIPE, SIG_IGN); /* a client that hangs up must not kill us */

    for (int i = optind; i < argc; i++)
        open_listener(argv[i], &listeners[listener_count++]);

    struct worker *workers = calloc((size_t)worker_count, sizeof(*workers));
    if (!workers)
        fail("calloc");
    for (int i = 0; i < worker_count; i++) {
        workers[i].epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (workers[i].epoll_fd < 0)
            fail("epoll_create1");
        if (batch_sends) {
            char why[128];
            workers[i].batch = calloc(1, sizeof(*workers[i].batch));
            if (!workers[i].batch)
                fail("calloc");
            if (!wp_sendbatch_init(workers[i].batch, true, why, sizeof(why))) {
                fprintf(stderr, "nullsrv: -u: %s\n", why);
                exit(1);
            }
        }
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0)
            fail("pthread_create");
    }

    struct pollfd fds[LISTENERS_MAX + 1];
    for (int i = 0; i < listener_count; i++)
        fds[i] = (struct pollfd){.fd = listeners[i].fd, .events = POLLIN};
    fds[listener_count] = (struct pollfd){.fd = signal_fd, .events = POLLIN};

    fprintf(stderr, "nullsrv: pid %d, %d worker threads%s, listening on", (int)getpid(), worker_count,
            batch_sends ? " (batched sends)" : "");
    for (int i = 0; i < listener_count; i++)
        fprintf(stderr, " %s", listeners[i].spec);
    fprintf(stderr, "\n");

    unsigned next_worker = 0;
    for (;;) {
        if (poll(fds, (nfds_t)listener_count + 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            fail("poll");
        }
        if (fds[listener_count].revents & POLLIN) {
            remove_unix_sockets();
            return 0; /* workers end with the process; their clients see EOF */
        }
        for (int i = 0; i < listener_count; i++)
            if (fds[i].revents & POLLIN)
                accept_connection(&listeners[i], workers, worker_count, &next_worker);
    }
}
