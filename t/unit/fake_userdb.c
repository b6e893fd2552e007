/* SPDX-License-Identifier: MIT */
/*
 * fake_userdb - a stand-in for Dovecot's auth-userdb socket in tests.
 *
 *   fake_userdb SOCKET MODE USER...
 * MODE: "answer" replies USER/NOTFOUND per the listed users; "hang" never
 * replies (for the timeout path); "fail" replies FAIL.  Serves connections
 * one at a time until killed; logs each asked name to stdout.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", argv[1]);
    unlink(argv[1]);
    if (bind(ls, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(ls, 16) < 0) {
        perror("fake_userdb: bind");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        char buf[4096];
        size_t have = 0;
        const char *hello = "VERSION\t1\t2\nSPID\t4242\n";
        if (write(fd, hello, strlen(hello)) < 0) {
            close(fd);
            continue;
        }
        for (;;) {
            ssize_t r = read(fd, buf + have, sizeof(buf) - 1 - have);
            if (r <= 0)
                break;
            have += (size_t)r;
            buf[have] = '\0';
            char *req = strstr(buf, "USER\t1\t");
            if (!req || !strchr(req, '\n'))
                continue;
            char *name = req + 7;
            name[strcspn(name, "\t\n")] = '\0';
            printf("asked %s\n", name);
            if (strcmp(argv[2], "hang") == 0) {
                sleep(5);
                break;
            }
            char reply[600];
            if (strcmp(argv[2], "fail") == 0) {
                snprintf(reply, sizeof(reply), "FAIL\t1\treason=test\n");
            } else {
                int found = 0;
                for (int i = 3; i < argc; i++)
                    found |= strcmp(argv[i], name) == 0;
                if (found)
                    snprintf(reply, sizeof(reply), "USER\t1\t%.400s\tuid=1000\tgid=1000\thome=/home/x\n",
                             name);
                else
                    snprintf(reply, sizeof(reply), "NOTFOUND\t1\n");
            }
            if (write(fd, reply, strlen(reply)) < 0)
                break;
            break;
        }
        close(fd);
    }
}
