/* SPDX-License-Identifier: MIT */
/*
 * submit.c - mail injection through the host MTA (see submit.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/submit.h"
#include "lib/util.h"

/* What to send: the arguments of wp_submit. */
struct submission {
    const char *sender;
    const char *const *rcpts;
    size_t nrcpts;
    const char *text;
};

/* Read one (possibly multi-line) SMTP reply; true if its class is want. */
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

static bool send_smtp(const char *hostport, const struct submission *rm, char *err, size_t errlen)
{
    char host[256];
    wp_strlcpy(host, hostport, sizeof(host));
    char *colon = strrchr(host, ':');
    if (!colon) {
        snprintf(err, errlen, "smtp:%s: expected HOST:PORT", hostport);
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
    struct timeval tv = {30, 0};
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
        fprintf(f, "MAIL FROM:<%s>\r\n", rm->sender);
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

static bool send_sendmail(const char *path, const struct submission *rm, char *err, size_t errlen)
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
    argv[a++] = (char *)rm->sender;
    argv[a++] = "--";
    for (size_t i = 0; i < rm->nrcpts; i++)
        argv[a++] = (char *)rm->rcpts[i];
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

bool wp_submit(const char *via, const char *sender, const char *const *rcpts, size_t nrcpts, const char *text,
               char *err, size_t errlen)
{
    const struct submission sub = {sender ? sender : "", rcpts, nrcpts, text};
    if (nrcpts == 0) {
        snprintf(err, errlen, "no recipients");
        return false;
    }
    if (strncmp(via, "smtp:", 5) == 0)
        return send_smtp(via + 5, &sub, err, errlen);
    if (strncmp(via, "sendmail:", 9) == 0)
        return send_sendmail(via + 9, &sub, err, errlen);
    snprintf(err, errlen, "unknown submission method '%s' (smtp:HOST:PORT or sendmail:PATH)", via);
    return false;
}
